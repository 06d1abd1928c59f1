//! Distributed compilation through sccache-dist for buildd's sccache server: whether the
//! server's configuration gets the `[dist]` section, what the scheduler said when last
//! asked, and the counts status shows.
//!
//! Two facts of sccache 0.16 shape this module. A scheduler that is down costs nothing:
//! sccache compiles locally (counting a "failed distributed compilation" when it had
//! connected before) and tries to reconnect every 30 s on its own. A scheduler that
//! *refuses the token* is worse: its status endpoint does not check tokens, so sccache
//! connects, and then every distributed compilation fails with `http error status: Error
//! 401` instead of falling back. So buildd checks the token itself, with one request the
//! scheduler refuses before it allocates anything, and leaves `[dist]` out of its server's
//! configuration while the token is refused: the jobs compile locally and status says why.
//!
//! **Invariant:** the scheduler is never asked in a tight loop: a check runs at a server's
//! start and then at most once per [`Check::wait`], which doubles while the scheduler is
//! down or refuses the token (up to [`MAX_WAIT`]). This module runs nothing on the
//! dispatcher: its checks are awaited by the tasks that run jobs and collect stats.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::home::dist_config::{DistConfig, sccache_dist_section};
use crate::wire::protocol::SccacheDistStatus;

/// How long the token check may take: a scheduler answers it at once.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The wait between checks of a scheduler that answers and accepts the token.
const HEALTHY_WAIT: Duration = Duration::from_secs(60);
/// The first wait after a check found a problem; it doubles up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_secs(15);
const MAX_WAIT: Duration = Duration::from_secs(10 * 60);

/// What the scheduler answered to the token check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Accepted,
    /// The scheduler's words (`Fixed token mismatch`).
    Refused(String),
    /// No answer: connection refused, a timeout, a server error.
    Unreachable(String),
    /// Not checked (an `https://` scheduler: buildd has no TLS client of its own).
    Unchecked(String),
}

/// The scheduler as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    Unchecked,
    /// sccache's server reached it.
    Connected {
        servers: u64,
        cpus: u64,
    },
    /// sccache's server cannot reach it; sccache's words.
    Unreachable(String),
    /// The scheduler refuses the token.
    Refused(String),
    /// An answer of sccache's this module does not know.
    Other(String),
}

/// The slow operation "ask the scheduler": its last answer, when, and the wait before the
/// next one.
#[derive(Debug)]
struct Check {
    seen: Seen,
    /// Whether the running server's configuration has `[dist]`.
    in_server: bool,
    /// Whether the next server gets `[dist]`: false while the token is refused.
    wanted: bool,
    at: Option<Instant>,
    wait: Duration,
    /// The remote failures counted by the last check: more since then make a check due at
    /// once (the scheduler or a build server may have gone away).
    errors_at_check: u64,
    /// The distributed compilations counted by the last check: more since then, while the
    /// scheduler looked down, make a check due at once (sccache reconnected on its own).
    distributed_at_check: u64,
    /// A check runs now: a second one waits for the next occasion.
    running: bool,
    /// A server started since this daemon began (`in_server` describes a running one).
    server_started: bool,
}

/// sccache-dist for buildd's server: its configuration and what was last seen of it.
#[derive(Debug)]
pub(crate) struct Dist {
    pub(crate) config: DistConfig,
    /// The dist client's own dir (toolchain archives): buildd's, never the user's.
    client_dir: PathBuf,
    check: std::sync::Mutex<Check>,
}

/// Counts of buildd's server, from `--show-stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct DistCounts {
    /// Compilations the build servers ran.
    pub(crate) distributed: u64,
    /// Compilations sent out that failed there and were compiled locally.
    pub(crate) errors: u64,
    /// Every compilation the server ran, here or there.
    pub(crate) compilations: u64,
}

impl DistCounts {
    fn fell_back(&self) -> u64 {
        self.compilations.saturating_sub(self.distributed)
    }
}

impl Dist {
    pub(crate) fn new(config: DistConfig, sccache_dir: &Path) -> Dist {
        Dist {
            config,
            client_dir: sccache_dir.join("dist-client"),
            check: std::sync::Mutex::new(Check {
                seen: Seen::Unchecked,
                in_server: false,
                wanted: true,
                at: None,
                wait: FIRST_WAIT,
                errors_at_check: 0,
                distributed_at_check: 0,
                running: false,
                server_started: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Check> {
        self.check.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the running server must be replaced: the token's answer changed what its
    /// configuration should hold.
    pub(crate) fn restart_wanted(&self) -> bool {
        let check = self.lock();
        check.in_server != check.wanted
    }

    /// Before a server starts: checks the token (unless a check decided already) and
    /// returns the configuration file's text, with `[dist]` unless the token is refused.
    pub(crate) async fn server_config(&self) -> String {
        let decided = self.lock().at.is_some();
        if !decided {
            match probe_token(&self.config.scheduler_url, &self.config.token).await {
                // The check after the start says how the scheduler is: `--dist-status` needs
                // the running server.
                Token::Accepted | Token::Unchecked(_) => self.lock().wanted = true,
                token => self.record_token(&token, None),
            }
        }
        let include = self.lock().wanted;
        let mut text = String::from(
            "# buildd's sccache: written by buildd at each start of its server (do not edit)\n",
        );
        if include {
            text.push_str(&sccache_dist_section(&self.config, &self.client_dir));
        }
        text
    }

    /// The server is being replaced (see [`Dist::restart_wanted`]): what was seen was seen
    /// through the old one, and the new one's start checks the token again.
    pub(crate) fn restarting(&self) {
        let mut check = self.lock();
        check.seen = Seen::Unchecked;
        check.at = None;
    }

    /// The server started with the configuration of [`Dist::server_config`].
    pub(crate) fn started(&self) {
        let mut check = self.lock();
        check.in_server = check.wanted;
        check.server_started = true;
    }

    /// Starts a check if one is due: never checked, the wait is over, compilations failed
    /// remotely since the last check of a scheduler that was fine, or went out since the
    /// last check of one that was not. Returns whether it started;
    /// [`Dist::record`] ends it.
    pub(crate) fn begin(&self, counts: Option<&DistCounts>) -> bool {
        let mut check = self.lock();
        let more_fallbacks = counts.is_some_and(|c| c.errors > check.errors_at_check);
        let more_distributed = counts.is_some_and(|c| c.distributed > check.distributed_at_check);
        let connected = matches!(check.seen, Seen::Connected { .. });
        let due = match check.at {
            None => true,
            Some(at) => {
                at.elapsed() >= check.wait
                    || (more_fallbacks && connected)
                    || (more_distributed && !connected)
            }
        };
        if due && !check.running {
            check.running = true;
            true
        } else {
            false
        }
    }

    /// Records what sccache's `--dist-status` printed (`Err`: it failed or could not be run)
    /// and the token check, when one ran.
    pub(crate) fn record(
        &self,
        dist_status: Result<String, String>,
        token: Option<Token>,
        counts: Option<&DistCounts>,
    ) {
        let seen = match dist_status {
            Ok(json) => parse_dist_status(&json),
            Err(e) => Seen::Other(e),
        };
        match token {
            Some(token) => self.record_token(&token, Some(seen)),
            None => self.finish(seen),
        }
        if let Some(counts) = counts {
            let mut check = self.lock();
            check.errors_at_check = counts.errors;
            check.distributed_at_check = counts.distributed;
        }
    }

    /// Whether a check of the scheduler should also check the token: when sccache reaches
    /// it (status does not check tokens), and while the server runs without `[dist]`.
    pub(crate) fn wants_token_check(&self, seen_now: &Result<String, String>) -> bool {
        let in_server = self.lock().in_server;
        !in_server
            || seen_now
                .as_ref()
                .is_ok_and(|json| matches!(parse_dist_status(json), Seen::Connected { .. }))
    }

    fn record_token(&self, token: &Token, seen: Option<Seen>) {
        let seen = match token {
            Token::Refused(why) => {
                self.lock().wanted = false;
                Seen::Refused(why.clone())
            }
            Token::Accepted => {
                self.lock().wanted = true;
                seen.unwrap_or(Seen::Unchecked)
            }
            // A scheduler that is down is sccache's to retry; only a refusal keeps `[dist]`
            // out.
            Token::Unreachable(why) => match seen {
                // sccache's own words, when it saw the same.
                Some(seen @ Seen::Unreachable(_)) => seen,
                _ => Seen::Unreachable(why.clone()),
            },
            Token::Unchecked(_) => seen.unwrap_or(Seen::Unchecked),
        };
        self.finish(seen);
    }

    fn finish(&self, seen: Seen) {
        let mut check = self.lock();
        let healthy = matches!(seen, Seen::Connected { .. });
        check.wait = if healthy {
            HEALTHY_WAIT
        } else if check.at.is_none()
            || matches!(check.seen, Seen::Connected { .. } | Seen::Unchecked)
        {
            FIRST_WAIT
        } else {
            (check.wait * 2).min(MAX_WAIT)
        };
        if seen != check.seen {
            match &seen {
                Seen::Connected { servers, .. } => tracing::info!(
                    scheduler = %self.config.scheduler_url, servers, "sccache-dist scheduler answers"
                ),
                other => tracing::warn!(
                    scheduler = %self.config.scheduler_url, state = ?other, "sccache-dist scheduler"
                ),
            }
        }
        check.seen = seen;
        check.at = Some(Instant::now());
        check.running = false;
    }

    /// What status shows, with the server's counts.
    pub(crate) fn status(&self, counts: Option<&DistCounts>) -> SccacheDistStatus {
        let check = self.lock();
        let counts = counts.copied().unwrap_or_default();
        let url = &self.config.scheduler_url;
        let again = check
            .at
            .map(|at| check.wait.saturating_sub(at.elapsed()).as_secs())
            .unwrap_or(0);
        let (servers, cpus) = match check.seen {
            Seen::Connected { servers, cpus } => (Some(servers), Some(cpus)),
            _ => (None, None),
        };
        let note = match (&check.seen, check.in_server, check.wanted) {
            (Seen::Refused(why), true, _) => Some(format!(
                "the scheduler at {url} refuses the token from {} ({why}); sccache fails the \
                 compilations it sends there, so buildd restarts its server without \
                 distributed compilation at the next job: fix the token (the scheduler's \
                 client_auth)",
                self.config.token_source
            )),
            (Seen::Refused(why), false, _) => Some(format!(
                "the scheduler at {url} refuses the token from {} ({why}): compiling locally; \
                 fix the token (the scheduler's client_auth); buildd checks again in {again}s",
                self.config.token_source
            )),
            (_, false, true) if check.server_started && check.at.is_some() => Some(format!(
                "the scheduler at {url} accepts the token now: buildd's next job restarts its \
                 sccache server with distributed compilation"
            )),
            (Seen::Unreachable(why), _, _) => Some(format!(
                "the scheduler at {url} does not answer ({why}): compiling locally; sccache \
                 reconnects on its own, buildd checks again in {again}s"
            )),
            (Seen::Other(why), _, _) => Some(format!("sccache --dist-status: {why}")),
            (Seen::Connected { servers: 0, .. }, _, _) => Some(format!(
                "the scheduler at {url} has no build server: compiling locally until one \
                 registers"
            )),
            _ => None,
        };
        SccacheDistStatus {
            scheduler_url: url.clone(),
            active: check.in_server
                && matches!(check.seen, Seen::Connected { servers, .. } if servers > 0),
            servers,
            cpus,
            distributed: counts.distributed,
            fell_back: counts.fell_back(),
            dist_errors: counts.errors,
            checked_secs_ago: check.at.map(|at| at.elapsed().as_secs()),
            next_check_secs: check.at.map(|_| again),
            note,
        }
    }
}

/// `sccache --dist-status`'s JSON: `{"SchedulerStatus":[url,{"num_servers":1,...}]}`,
/// `{"NotConnected":[url,"why"]}` or `{"Disabled":"why"}`.
pub(crate) fn parse_dist_status(json: &str) -> Seen {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json.trim()) else {
        return Seen::Other(format!("unreadable answer: {}", json.trim()));
    };
    if let Some(status) = value.get("SchedulerStatus").and_then(|s| s.get(1)) {
        return Seen::Connected {
            servers: status["num_servers"].as_u64().unwrap_or(0),
            cpus: status["num_cpus"].as_u64().unwrap_or(0),
        };
    }
    if let Some(why) = value
        .get("NotConnected")
        .and_then(|s| s.get(1))
        .and_then(|w| w.as_str())
    {
        return Seen::Unreachable(format!("sccache: {why}"));
    }
    if let Some(why) = value.get("Disabled").and_then(|w| w.as_str()) {
        return Seen::Other(format!("distributed compilation is disabled ({why})"));
    }
    Seen::Other(format!("unknown answer: {}", json.trim()))
}

/// Asks the scheduler whether it accepts `token`, with a request it refuses before it
/// allocates anything: `POST /api/v1/scheduler/alloc_job` with an empty body. sccache-dist
/// checks the bearer token first (401 when refused), then refuses the empty body (400).
pub(crate) async fn probe_token(url: &str, token: &str) -> Token {
    let Some(authority) = url.strip_prefix("http://") else {
        return Token::Unchecked(
            "buildd checks the token only with an http:// scheduler".to_owned(),
        );
    };
    let authority = authority.trim_end_matches('/');
    let request = format!(
        "POST /api/v1/scheduler/alloc_job HTTP/1.1\r\nHost: {authority}\r\n\
         Authorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        // A scheduler's answer here is a line or two; more is not read.
        stream.take(16 * 1024).read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = match tokio::time::timeout(PROBE_TIMEOUT, exchange).await {
        Err(_) => {
            return Token::Unreachable(format!("no answer within {}s", PROBE_TIMEOUT.as_secs()));
        }
        Ok(Err(e)) => return Token::Unreachable(e.to_string()),
        Ok(Ok(answer)) => String::from_utf8_lossy(&answer).into_owned(),
    };
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let code = head
        .lines()
        .next()
        .and_then(|status| status.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok());
    let body: String = body.trim().chars().take(200).collect();
    match code {
        Some(401 | 403) => Token::Refused(if body.is_empty() {
            format!("HTTP {}", code.unwrap_or(401))
        } else {
            format!("HTTP {}: {body}", code.unwrap_or(401))
        }),
        Some(400) => Token::Accepted,
        Some(code) => Token::Unreachable(format!(
            "HTTP {code} to the token check: is {url} an sccache-dist scheduler?"
        )),
        None => Token::Unreachable("not an HTTP answer".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A scheduler stand-in that answers one request with `answer`: the token check is
    /// about HTTP, which the e2e test `sccache_dist_*` runs against the real scheduler.
    async fn answering(answer: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).await.unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            assert!(request.contains("Authorization: Bearer tok"), "{request}");
            stream.write_all(answer.as_bytes()).await.unwrap();
        });
        url
    }

    #[tokio::test]
    async fn the_token_check_tells_refused_from_accepted_and_from_down() {
        let url = answering(
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 20\r\n\r\nFixed token mismatch",
        )
        .await;
        assert_eq!(
            probe_token(&url, "tok").await,
            Token::Refused("HTTP 401: Fixed token mismatch".into())
        );
        let url = answering("HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\n{}").await;
        assert_eq!(probe_token(&url, "tok").await, Token::Accepted);
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", free.local_addr().unwrap());
        drop(free);
        assert!(matches!(
            probe_token(&url, "tok").await,
            Token::Unreachable(_)
        ));
        assert!(matches!(
            probe_token("https://sched.internal", "tok").await,
            Token::Unchecked(_)
        ));
    }

    #[test]
    fn dist_status_answers_parse() {
        assert_eq!(
            parse_dist_status(
                r#"{"SchedulerStatus":["http://127.0.0.1:10600/",{"num_servers":1,"num_cpus":2,"in_progress":0}]}"#
            ),
            Seen::Connected {
                servers: 1,
                cpus: 2
            }
        );
        assert_eq!(
            parse_dist_status(
                r#"{"NotConnected":["http://127.0.0.1:10600/","could not communicate with scheduler"]}"#
            ),
            Seen::Unreachable("sccache: could not communicate with scheduler".into())
        );
        assert!(matches!(
            parse_dist_status(r#"{"Disabled":"disabled"}"#),
            Seen::Other(_)
        ));
        assert!(matches!(parse_dist_status("garbage"), Seen::Other(_)));
    }

    fn dist() -> Dist {
        Dist::new(
            DistConfig {
                scheduler_url: "http://127.0.0.1:1".into(),
                token: "tok".into(),
                token_source: "sccache.dist.token".into(),
                toolchains: vec![],
                toolchain_cache_size: None,
                rewrite_includes_only: false,
            },
            Path::new("/h/sccache"),
        )
    }

    #[test]
    fn a_refused_token_keeps_dist_out_and_checks_back_off() {
        let dist = dist();
        dist.record_token(
            &Token::Refused("HTTP 401: Fixed token mismatch".into()),
            None,
        );
        assert!(!dist.restart_wanted(), "nothing runs yet");
        dist.started();
        let status = dist.status(None);
        assert!(!status.active);
        let note = status.note.unwrap();
        assert!(
            note.contains("refuses the token") && note.contains("compiling locally"),
            "{note}"
        );
        assert!(!dist.begin(None));
        let first = dist.lock().wait;
        dist.record(
            Ok(r#"{"Disabled":"disabled"}"#.into()),
            Some(Token::Refused("x".into())),
            None,
        );
        assert_eq!(dist.lock().wait, first * 2);
        for _ in 0..10 {
            dist.record(Ok(String::new()), Some(Token::Refused("x".into())), None);
        }
        assert_eq!(dist.lock().wait, MAX_WAIT);
        // Accepted again: the next job restarts the server with `[dist]`.
        dist.record(
            Ok(r#"{"SchedulerStatus":["u",{"num_servers":1,"num_cpus":2}]}"#.into()),
            Some(Token::Accepted),
            None,
        );
        assert!(dist.restart_wanted());
        assert_eq!(dist.lock().wait, HEALTHY_WAIT);
    }

    #[test]
    fn a_scheduler_that_goes_down_is_reported_and_fallbacks_make_a_check_due() {
        let dist = dist();
        dist.record_token(&Token::Accepted, None);
        dist.started();
        let counts = DistCounts {
            distributed: 3,
            errors: 0,
            compilations: 3,
        };
        dist.record(
            Ok(r#"{"SchedulerStatus":["u",{"num_servers":1,"num_cpus":2}]}"#.into()),
            Some(Token::Accepted),
            Some(&counts),
        );
        let status = dist.status(Some(&counts));
        assert!(status.active && status.note.is_none(), "{status:?}");
        assert!(!dist.begin(Some(&counts)));
        let later = DistCounts {
            distributed: 3,
            errors: 1,
            compilations: 4,
        };
        assert!(dist.begin(Some(&later)));
        assert!(!dist.begin(Some(&later)), "one check at a time");
        dist.record(
            Ok(r#"{"NotConnected":["u","could not communicate with scheduler"]}"#.into()),
            None,
            Some(&later),
        );
        let status = dist.status(Some(&later));
        assert!(!status.active);
        assert_eq!(
            (status.distributed, status.fell_back, status.dist_errors),
            (3, 1, 1)
        );
        assert!(status.note.unwrap().contains("does not answer"));
        assert!(!dist.begin(Some(&DistCounts {
            distributed: 3,
            errors: 2,
            compilations: 5
        })));
    }
}
