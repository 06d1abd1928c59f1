//! An integration test client: starts the real bot on a free port and talks to it.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn ask(port: u16, line: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    writeln!(stream, "{line}")?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    Ok(answer.trim().to_owned())
}

#[test]
fn the_bot_answers_over_tcp() {
    let port = free_port();
    let mut bot = Command::new(env!("CARGO_BIN_EXE_echo-bot"))
        .args(["--port", &port.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let pong = loop {
        match ask(port, "ping") {
            Ok(answer) => break answer,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("the bot never answered: {e}"),
        }
    };
    assert_eq!(pong, "pong");
    assert_eq!(ask(port, "echo hello there").unwrap(), "hello there");
    bot.kill().unwrap();
    bot.wait().unwrap();
}
