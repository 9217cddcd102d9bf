//! A tiny SMTP server on 127.0.0.1 that accepts every message and keeps its raw DATA, so a test
//! can point the real SMTP mailer at it. It speaks just enough of RFC 5321 for lettre: greeting,
//! EHLO/HELO, MAIL, RCPT, DATA (with dot-unstuffing), RSET, NOOP and QUIT, several messages per
//! connection (the mailer pools connections); no TLS, no AUTH.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::Notify,
    task::{JoinHandle, JoinSet},
};

/// A running receiver; stops when dropped.
pub struct SmtpReceiver {
    pub port: u16,
    inbox: Arc<Inbox>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Inbox {
    messages: Mutex<Vec<String>>,
    /// Each message's MAIL and RCPT commands, as sent.
    envelopes: Mutex<Vec<Vec<String>>>,
    arrived: Notify,
}

impl SmtpReceiver {
    /// Listens on a free port.
    pub async fn start() -> SmtpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("SMTP receiver bind: {e}"));
        let port = listener.local_addr().unwrap_or_else(|e| panic!("SMTP receiver address: {e}")).port();
        let inbox = Arc::new(Inbox::default());
        let accepting = Arc::clone(&inbox);
        let task = tokio::spawn(async move {
            // Dropping the set (when the receiver's task is aborted) ends every connection.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(converse(stream, Arc::clone(&accepting)));
            }
        });
        SmtpReceiver { port, inbox, task }
    }

    /// The raw DATA of every message received so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        self.inbox.messages.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The MAIL and RCPT commands of every message received so far, oldest first.
    pub fn envelopes(&self) -> Vec<Vec<String>> {
        self.inbox.envelopes.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Waits until `count` messages have arrived or `timeout` has passed, and returns them all.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before looking, so an arrival in between still wakes us.
            let arrived = self.inbox.arrived.notified();
            let messages = self.messages();
            if messages.len() >= count || tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.messages();
            }
        }
    }
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One SMTP session; any I/O error just ends it.
async fn converse(stream: TcpStream, inbox: Arc<Inbox>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 localhost test SMTP receiver\r\n").await?;
    let (mut line, mut envelope) = (Vec::new(), Vec::new());
    loop {
        line.clear();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let verb = String::from_utf8_lossy(line.get(..4).unwrap_or(&line)).to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" => write.write_all(b"250 localhost\r\n").await?,
            "DATA" => {
                write.write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n").await?;
                let message = read_data(&mut read).await?;
                let envelope = std::mem::take(&mut envelope);
                inbox.envelopes.lock().unwrap_or_else(PoisonError::into_inner).push(envelope);
                inbox.messages.lock().unwrap_or_else(PoisonError::into_inner).push(message);
                inbox.arrived.notify_waiters();
                write.write_all(b"250 OK queued\r\n").await?;
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            "MAIL" | "RCPT" => {
                envelope.push(String::from_utf8_lossy(&line).trim_end().to_owned());
                write.write_all(b"250 OK\r\n").await?;
            }
            "RSET" => {
                envelope.clear();
                write.write_all(b"250 OK\r\n").await?;
            }
            // NOOP and anything else: accepted.
            _ => write.write_all(b"250 OK\r\n").await?,
        }
    }
}

/// Reads message lines up to the lone "." and undoes dot-stuffing (RFC 5321 §4.5.2).
async fn read_data(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<String> {
    let mut message = String::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let text = String::from_utf8_lossy(&line);
        if text.trim_end_matches(['\r', '\n']) == "." {
            return Ok(message);
        }
        message.push_str(text.strip_prefix('.').unwrap_or(&text));
    }
}
