//! `buildd watch`: follow a workspace's jobs in the terminal until Ctrl-C. The daemon keeps
//! running afterwards.

use std::path::PathBuf;
use std::time::Duration;

use buildd_daemon::protocol::{EventKind, Request, ServerMessage, WorkspaceState};
use indicatif::{ProgressBar, ProgressStyle};

use crate::connect::Session;
use crate::{exit, render};

pub(crate) async fn run(session: &Session, path: Option<PathBuf>) -> anyhow::Result<i32> {
    let mut client = session.connect().await?;
    let workspace = session.register(&mut client, path.as_deref()).await?;
    client
        .call(Request::Subscribe {
            root: Some(workspace.root.clone()),
        })
        .await?;
    print!("{}", render::workspace(&workspace));
    println!(
        "watching {} (Ctrl-C to stop watching; the daemon keeps running)",
        workspace.root.display()
    );

    let mut bar: Option<ProgressBar> = None;
    loop {
        let message = tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                if let Some(bar) = bar.take() {
                    bar.finish_and_clear();
                }
                return Ok(exit::SUCCESS);
            }
            message = client.recv() => message?,
        };
        let Some(message) = message else {
            if let Some(bar) = bar.take() {
                bar.finish_and_clear();
            }
            eprintln!("buildd: the daemon stopped");
            return Ok(exit::UNREACHABLE);
        };
        let ServerMessage::Event { event } = message else {
            continue;
        };
        match event.kind {
            EventKind::JobStarted {
                job,
                expected_units,
                ..
            } => {
                let new = match expected_units {
                    Some(n) if n > 0 => ProgressBar::new(n).with_style(
                        ProgressStyle::with_template(
                            "{prefix:>7} [{bar:30}] {pos}/{len} {wide_msg}",
                        )?
                        .progress_chars("=> "),
                    ),
                    _ => ProgressBar::new_spinner().with_style(ProgressStyle::with_template(
                        "{prefix:>7} {spinner} {pos} units {wide_msg}",
                    )?),
                };
                new.enable_steady_tick(Duration::from_millis(120));
                new.set_message(format!("job #{job}"));
                bar = Some(new);
            }
            EventKind::StageStarted { stage, .. } => {
                if let Some(bar) = &bar {
                    bar.set_prefix(stage);
                }
            }
            EventKind::UnitFinished { package, fresh, .. } => {
                if let Some(bar) = &bar {
                    if bar.length().is_some_and(|len| bar.position() + 1 > len) {
                        bar.set_length(bar.position() + 1);
                    }
                    bar.inc(1);
                    if !fresh {
                        bar.set_message(package);
                    }
                }
            }
            EventKind::Diagnostic { diagnostic, .. } => {
                let text = render::diagnostic(&diagnostic);
                match &bar {
                    Some(bar) => bar.println(text),
                    None => println!("{text}"),
                }
            }
            EventKind::JobFinished { summary, .. } => {
                if let Some(bar) = bar.take() {
                    bar.finish_and_clear();
                }
                println!("{}", render::job_line(&summary));
            }
            EventKind::Disk { message, .. } => match message {
                Some(message) => println!("disk full: {message}"),
                None => println!("the disk has room again"),
            },
            EventKind::State { state, error } => {
                if state == WorkspaceState::Error
                    && let Some(error) = error
                {
                    println!("error: {error}");
                }
            }
        }
    }
}
