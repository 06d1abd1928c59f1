//! Job progress: an estimate from the daemon's facts, and its `$/progress` reports.
//!
//! [`JobProgress`] is pure: it turns `job_started`, `stage_started` and `unit_finished` into a
//! percentage that only grows and a message that names the crate just compiled. The total is
//! the daemon's estimate (`expected_units`, the units its last complete job reported); without
//! one, the percentage approaches 95 and never claims to be done.
//!
//! [`Reporter`] owns one job's work-done progress on the client: a task that asks the client
//! to create the token (`window/workDoneProgress/create`), then sends `begin`, the reports and
//! `end` in order. The main loop only sends it facts and never waits on the client.

use buildd_daemon::protocol::{CurrentJob, Stage};
use tokio::sync::mpsc;
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::notification::Progress;
use tower_lsp_server::ls_types::request::WorkDoneProgressCreate;
use tower_lsp_server::ls_types::{
    NumberOrString, ProgressParams, ProgressParamsValue, WorkDoneProgress, WorkDoneProgressBegin,
    WorkDoneProgressCreateParams, WorkDoneProgressEnd, WorkDoneProgressReport,
};

/// The highest percentage before the job has ended: the estimate may be short.
const BEFORE_END: u32 = 99;
/// Without an estimate, the percentage approaches this.
const UNKNOWN_CEILING: u32 = 95;
/// Without an estimate, half of the ceiling is reached after this many units.
const UNKNOWN_HALF: u64 = 10;
/// A client that does not answer `window/workDoneProgress/create` by then gets no progress
/// for the job, rather than a task waiting forever.
const CREATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One job's progress, as far as the daemon's facts tell.
#[derive(Debug, Clone)]
pub(crate) struct JobProgress {
    pub(crate) job: u64,
    expected: Option<u64>,
    stage: Option<Stage>,
    done: u64,
    percentage: u32,
    message: String,
}

impl JobProgress {
    pub(crate) fn new(job: u64, stages: &[Stage], expected: Option<u64>) -> JobProgress {
        let message = Stage::list(stages);
        JobProgress {
            job,
            expected: expected.filter(|&n| n > 0),
            stage: None,
            done: 0,
            percentage: 0,
            message,
        }
    }

    /// The progress of a job that ran before this server heard of it (an editor that
    /// connects mid-job): what the daemon's status counts so far.
    pub(crate) fn joined(current: &CurrentJob) -> JobProgress {
        let mut progress = JobProgress::new(current.id, &current.stages, current.expected_units);
        if let Some(stage) = &current.stage {
            progress.stage_started(stage.clone());
        }
        if current.units_done > 0 {
            let stage = current.stage.as_ref().map_or("build", Stage::name);
            progress.unit_finished(current.units_done, "", true);
            progress.message = format!(
                "{stage}: joined a running job ({} units so far)",
                current.units_done
            );
        }
        progress
    }

    pub(crate) fn stage_started(&mut self, stage: Stage) {
        self.message = format!("{stage}…");
        self.stage = Some(stage);
    }

    /// A unit finished (compiled, or found fresh); `done` is the daemon's count so far.
    pub(crate) fn unit_finished(&mut self, done: u64, package: &str, fresh: bool) {
        self.done = self.done.max(done);
        let estimate = match self.expected {
            Some(total) => u32::try_from(self.done * 100 / total).unwrap_or(u32::MAX),
            None => {
                let ceiling = u64::from(UNKNOWN_CEILING);
                u32::try_from(ceiling * self.done / (self.done + UNKNOWN_HALF)).unwrap_or(0)
            }
        };
        self.percentage = self.percentage.max(estimate.min(BEFORE_END));
        let stage = self.stage.as_ref().map_or("build", Stage::name);
        let what = if fresh { "fresh" } else { "compiled" };
        self.message = match self.expected {
            Some(total) => format!(
                "{stage}: {package} {what} ({}/{})",
                self.done,
                total.max(self.done)
            ),
            None if self.done == 1 => format!("{stage}: {package} {what} (1 unit)"),
            None => format!("{stage}: {package} {what} ({} units)", self.done),
        };
    }

    pub(crate) fn percentage(&self) -> u32 {
        self.percentage
    }

    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

/// What the main loop tells a job's reporter.
#[derive(Debug)]
enum Fact {
    Report { message: String, percentage: u32 },
    End { message: String },
}

/// A job's work-done progress on the client. Dropping it without [`Reporter::end`] ends the
/// progress with no message.
#[derive(Debug)]
pub(crate) struct Reporter {
    token: String,
    tx: mpsc::UnboundedSender<Fact>,
}

impl Reporter {
    /// Starts a job's progress: creates the token on the client, then begins with the job's
    /// stages.
    pub(crate) fn start(client: Client, token: String, progress: &JobProgress) -> Reporter {
        let (tx, rx) = mpsc::unbounded_channel();
        let begin = WorkDoneProgressBegin {
            title: "buildd".to_owned(),
            cancellable: Some(true),
            message: Some(progress.message().to_owned()),
            // Zero for a new job; what is done already for a job joined mid-way.
            percentage: Some(progress.percentage()),
        };
        tokio::spawn(run(client, token.clone(), begin, rx));
        Reporter { token, tx }
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    pub(crate) fn report(&self, progress: &JobProgress) {
        let _ = self.tx.send(Fact::Report {
            message: progress.message().to_owned(),
            percentage: progress.percentage(),
        });
    }

    pub(crate) fn end(self, message: String) {
        let _ = self.tx.send(Fact::End { message });
    }
}

async fn run(
    client: Client,
    token: String,
    begin: WorkDoneProgressBegin,
    mut rx: mpsc::UnboundedReceiver<Fact>,
) {
    let token = NumberOrString::String(token);
    let create = client.send_request::<WorkDoneProgressCreate>(WorkDoneProgressCreateParams {
        token: token.clone(),
    });
    match tokio::time::timeout(CREATE_TIMEOUT, create).await {
        Ok(Ok(())) => {}
        // The spec forbids reporting on a token the client did not create.
        Ok(Err(e)) => {
            tracing::debug!("the client did not create progress {token:?}: {e}");
            return;
        }
        Err(_) => {
            tracing::warn!(
                "the client did not answer window/workDoneProgress/create for {token:?}"
            );
            return;
        }
    }
    let send = |value: WorkDoneProgress| {
        client.send_notification::<Progress>(ProgressParams {
            token: token.clone(),
            value: ProgressParamsValue::WorkDone(value),
        })
    };
    send(WorkDoneProgress::Begin(begin)).await;
    let mut last_percentage = 0;
    while let Some(fact) = rx.recv().await {
        let (mut message, mut percentage) = match fact {
            Fact::Report {
                message,
                percentage,
            } => (message, percentage),
            Fact::End { message } => {
                send(end(message)).await;
                return;
            }
        };
        // Reports queued while the client was slow collapse into the latest one, which is
        // still sent before an end, so the last percentage is seen.
        let mut ending = None;
        while let Ok(next) = rx.try_recv() {
            match next {
                Fact::Report {
                    message: m,
                    percentage: p,
                } => (message, percentage) = (m, p),
                Fact::End { message } => {
                    ending = Some(message);
                    break;
                }
            }
        }
        last_percentage = last_percentage.max(percentage);
        send(WorkDoneProgress::Report(WorkDoneProgressReport {
            cancellable: Some(true),
            message: Some(message),
            percentage: Some(last_percentage),
        }))
        .await;
        if let Some(message) = ending {
            send(end(message)).await;
            return;
        }
    }
    send(WorkDoneProgress::End(WorkDoneProgressEnd { message: None })).await;
}

fn end(message: String) -> WorkDoneProgress {
    WorkDoneProgress::End(WorkDoneProgressEnd {
        message: Some(message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentage_follows_the_estimate_and_never_reaches_100_before_the_end() {
        let mut p = JobProgress::new(3, &[Stage::new("build"), Stage::new("test")], Some(4));
        assert_eq!(p.message(), "build, test");
        p.stage_started(Stage::new("build"));
        p.unit_finished(1, "util", false);
        assert_eq!(p.percentage(), 25);
        assert_eq!(p.message(), "build: util compiled (1/4)");
        p.unit_finished(2, "core-lib", true);
        assert_eq!(p.percentage(), 50);
        p.unit_finished(4, "app", false);
        assert_eq!(p.percentage(), 99);
        // More units than the last run had: the total grows, the percentage does not drop.
        p.unit_finished(6, "app", false);
        assert_eq!(p.percentage(), 99);
        assert_eq!(p.message(), "build: app compiled (6/6)");
    }

    #[test]
    fn without_an_estimate_the_percentage_grows_towards_95() {
        let mut p = JobProgress::new(1, &[Stage::new("check")], None);
        let mut last = 0;
        for done in 1..200 {
            p.unit_finished(done, "x", false);
            assert!(p.percentage() >= last);
            assert!(p.percentage() <= UNKNOWN_CEILING);
            last = p.percentage();
        }
        assert!(last >= 90, "{last}");
        assert!(p.message().ends_with("(199 units)"));
    }

    #[test]
    fn a_job_joined_mid_way_begins_at_what_is_done() {
        let current = CurrentJob {
            id: 9,
            stages: vec![Stage::new("check")],
            stage: Some(Stage::new("check")),
            units_done: 3,
            expected_units: Some(6),
        };
        let p = JobProgress::joined(&current);
        assert_eq!((p.job, p.percentage()), (9, 50));
        assert_eq!(p.message(), "check: joined a running job (3 units so far)");
        let fresh = JobProgress::joined(&CurrentJob {
            units_done: 0,
            stage: None,
            ..current
        });
        assert_eq!((fresh.percentage(), fresh.message()), (0, "check"));
    }

    #[test]
    fn a_zero_estimate_counts_as_none() {
        let mut p = JobProgress::new(1, &[Stage::new("build")], Some(0));
        p.unit_finished(1, "x", false);
        assert!(p.percentage() < 99);
    }
}
