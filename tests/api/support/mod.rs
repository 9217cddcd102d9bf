//! Servers that stand in for the outside world in tests: an SMTP receiver and an SMS gateway.

pub mod providers;
pub mod redis_server;
pub mod siteverify;
pub mod sms_gateway;
pub mod smtp_receiver;
