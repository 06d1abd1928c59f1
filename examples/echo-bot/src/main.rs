//! A tiny line-protocol server on a loopback TCP port, standing in for a chat bot:
//! `ping` -> `pong`, `echo TEXT` -> `TEXT`, `version` -> the bot's version, `quit` closes.
//! Usage: echo-bot [--port N] (default 7878).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

/// Edit this while `buildd watch --run` runs the bot, and ask it `version`.
const VERSION: &str = "1";

fn reply(line: &str) -> Option<String> {
    let line = line.trim();
    match line.split_once(' ') {
        _ if line == "ping" => Some("pong".to_owned()),
        _ if line == "version" => Some(VERSION.to_owned()),
        _ if line == "quit" => None,
        Some(("echo", text)) => Some(text.to_owned()),
        _ => Some(format!("unknown command: {line}")),
    }
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    for line in BufReader::new(stream).lines() {
        match reply(&line?) {
            Some(answer) => writeln!(writer, "{answer}")?,
            None => break,
        }
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut port = 7878;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or(port),
            other => eprintln!("ignoring unknown argument {other}"),
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    println!(
        "echo-bot {VERSION} listening on {} (pid {})",
        listener.local_addr()?,
        std::process::id()
    );
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::spawn(move || serve(stream));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn answers_ping() {
        assert_eq!(super::reply("ping").as_deref(), Some("pong"));
    }
}
