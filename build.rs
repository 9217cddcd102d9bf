//! Bundles GraphiQL's browser assets into the binary, so `/graphql` serves a working GraphiQL
//! with no CDN: offline, pinned and checked by Subresource Integrity.
//!
//! No minified third-party file is committed. `web/graphiql/package.json` pins exact versions and
//! its committed `package-lock.json` holds their integrity hashes (and no download addresses:
//! npm takes them from the machine's own registry setting). This script copies the two into
//! `OUT_DIR`, runs `npm ci` there, and writes `graphiql_assets.rs`, which embeds the UMD bundles
//! of React, ReactDOM and GraphiQL plus idgate's own bootstrap script and stylesheet
//! (`include_bytes!`), each with a content-hashed file name and its `sha384-` SRI value.
//!
//! A machine without Node.js/npm (or with npm failing, e.g. offline with a cold cache) still
//! builds: the script warns, sets `cfg(graphiql_unbundled)`, and the page explains how to get
//! GraphiQL instead; the API is unaffected. `NPM` names another npm executable; set it to a
//! path that does not exist to build the unbundled variant on purpose.

use std::{
    env,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha384};

const WEB: &str = "web/graphiql";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// (constant name, file under `node_modules` or under `web/graphiql/` for our own, served
/// stem, served extension, content type). Order is load order in the page.
const THIRD_PARTY: [(&str, &str, &str, &str, &str); 4] = [
    ("REACT", "react/umd/react.production.min.js", "react-18.production.min", "js", JS),
    ("REACT_DOM", "react-dom/umd/react-dom.production.min.js", "react-dom-18.production.min", "js", JS),
    ("GRAPHIQL_JS", "graphiql/graphiql.min.js", "graphiql-3.min", "js", JS),
    ("GRAPHIQL_CSS", "graphiql/graphiql.min.css", "graphiql-3.min", "css", CSS),
];
const OWN: [(&str, &str, &str, &str, &str); 2] = [
    ("PAGE_JS", "idgate-graphiql.js", "idgate-graphiql", "js", JS),
    ("PAGE_CSS", "idgate-graphiql.css", "idgate-graphiql", "css", CSS),
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(graphiql_unbundled)");
    for file in ["package.json", "package-lock.json", ".npmrc"].iter().chain(OWN.iter().map(|own| &own.1)) {
        println!("cargo::rerun-if-changed={WEB}/{file}");
    }
    println!("cargo::rerun-if-env-changed=NPM");

    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let generated = match bundle(&manifest, &out) {
        Ok(code) => code,
        Err(why) => {
            println!("cargo::warning=GraphiQL is not bundled in this build: {why}");
            println!(
                "cargo::warning=/graphql will explain this in a browser; the API works. To bundle it, install \
                 Node.js with npm and rebuild (touch {WEB}/package.json first if nothing else changed)."
            );
            println!("cargo::rustc-cfg=graphiql_unbundled");
            "/// No assets: GraphiQL could not be bundled in this build.\nconst ASSETS: &[Asset] = &[];\n".to_owned()
        }
    };
    if let Err(e) = fs::write(out.join("graphiql_assets.rs"), generated) {
        // Without this file the crate cannot compile; say why plainly.
        panic!("cannot write {}: {e}", out.join("graphiql_assets.rs").display());
    }
}

/// Installs the pinned packages into `OUT_DIR/graphiql` and returns the generated Rust code.
fn bundle(manifest: &Path, out: &Path) -> Result<String, String> {
    let web = manifest.join(WEB);
    let work = out.join("graphiql");
    fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    for file in ["package.json", "package-lock.json", ".npmrc"] {
        fs::copy(web.join(file), work.join(file)).map_err(|e| format!("cannot copy {WEB}/{file}: {e}"))?;
    }
    let npm = env::var_os("NPM").unwrap_or_else(|| "npm".into());
    let output = Command::new(&npm)
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"])
        .current_dir(&work)
        .output()
        .map_err(|e| format!("cannot run {} ({e}); is Node.js with npm installed?", npm.to_string_lossy()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output");
        return Err(format!("`npm ci` failed ({}): {last}", output.status));
    }

    // Each file is embedded from a copy named as served: the bytes compiled in are exactly the
    // bytes hashed, and the 50-odd MB of node_modules need not stay in the target directory.
    let assets = work.join("assets");
    let _ = fs::remove_dir_all(&assets);
    fs::create_dir_all(&assets).map_err(|e| format!("cannot create {}: {e}", assets.display()))?;
    let mut code = String::from("// Generated by build.rs from web/graphiql; do not edit.\n\n");
    let modules = work.join("node_modules");
    let files = THIRD_PARTY.iter().map(|a| (a, modules.join(a.1))).chain(OWN.iter().map(|a| (a, web.join(a.1))));
    let mut names = Vec::new();
    for (&(constant, _, stem, ext, content_type), path) in files {
        let body = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let digest = Sha384::digest(&body);
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let name = format!("{stem}.{hex}.{ext}");
        let copy = assets.join(&name);
        fs::write(&copy, &body).map_err(|e| format!("cannot write {}: {e}", copy.display()))?;
        let _ = writeln!(
            code,
            "const {constant}: Asset = Asset {{\n    name: \"{name}\",\n    content_type: \"{content_type}\",\n    \
             integrity: \"sha384-{}\",\n    body: include_bytes!({:?}),\n}};",
            STANDARD.encode(digest),
            copy.display().to_string(),
        );
        names.push(constant);
    }
    // Only disk space is at stake if this fails.
    let _ = fs::remove_dir_all(&modules);
    let _ = writeln!(
        code,
        "\n/// Every file served under the asset route.\nconst ASSETS: &[Asset] = &[{}];",
        names.join(", ")
    );
    Ok(code)
}
