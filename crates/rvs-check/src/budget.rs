//! The time budget of one attempt and the failure type every checker returns.

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::time::Instant;

/// Why an attempt failed: the reason that becomes `Outcome::Down`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fail(String);

impl Fail {
    /// A failure with this reason.
    pub(crate) fn new(reason: impl Into<String>) -> Fail {
        Fail(reason.into())
    }

    /// A failed I/O step: `"connect: connection refused"`.
    pub(crate) fn io(step: &str, err: &io::Error) -> Fail {
        Fail(format!("{step}: {}", describe(err)))
    }

    /// The reason.
    pub(crate) fn into_reason(self) -> String {
        self.0
    }
}

/// The result of a checker step.
pub(crate) type Res<T> = Result<T, Fail>;

/// An OS error as a short lower-case phrase: "connection refused", not
/// "Connection refused (os error 111)".
pub(crate) fn describe(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error ") {
        Some(at) => &text[..at],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::from("unknown error"),
    }
}

/// The deadline of one attempt: every step of a checker runs within it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    deadline: Instant,
    limit: Duration,
}

impl Budget {
    /// A budget of `limit` from now.
    pub(crate) fn new(limit: Duration) -> Budget {
        Budget {
            deadline: Instant::now() + limit,
            limit,
        }
    }

    /// When the attempt's time is up.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The reason of an attempt that ran out of time: `"timeout after 2s"`.
    pub(crate) fn timeout_reason(&self) -> String {
        format!("timeout after {:?}", self.limit)
    }

    /// The failure of an attempt that ran out of time.
    pub(crate) fn timeout(&self) -> Fail {
        Fail(self.timeout_reason())
    }

    /// Runs `fut` until the deadline; `None` when the deadline came first.
    pub(crate) async fn within<F: Future>(&self, fut: F) -> Option<F::Output> {
        tokio::time::timeout_at(self.deadline, fut).await.ok()
    }

    /// Runs the I/O step `fut` until the deadline; a timeout or an error fails the attempt,
    /// an error named after `step`.
    pub(crate) async fn io<T, F>(&self, step: &str, fut: F) -> Res<T>
    where
        F: Future<Output = io::Result<T>>,
    {
        match self.within(fut).await {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(Fail::io(step, &e)),
            None => Err(self.timeout()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_read_as_short_lower_case_phrases() {
        let refused = io::Error::from_raw_os_error(111);
        assert_eq!(describe(&refused), "connection refused");
        assert_eq!(
            Fail::io("connect", &refused).into_reason(),
            "connect: connection refused"
        );
        let custom = io::Error::other("Bad thing");
        assert_eq!(describe(&custom), "bad thing");
    }

    #[test]
    fn timeout_reason_names_the_limit() {
        assert_eq!(
            Budget::new(Duration::from_secs(2)).timeout_reason(),
            "timeout after 2s"
        );
        assert_eq!(
            Budget::new(Duration::from_millis(1500)).timeout_reason(),
            "timeout after 1.5s"
        );
    }
}
