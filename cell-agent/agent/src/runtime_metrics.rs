//! Request and error counts of a runtime, read from its Prometheus endpoint, for the rollout
//! gate on the runtime error rate.
//!
//! Requests are the frontend's `service_requests`; errors are the frontend's
//! `service_error_with_type` of the kinds that mean the server failed (internal, unavailable,
//! deadline exceeded, resource exhausted, unknown) — not a client's mistakes such as `NotFound`.
//! Long polls are left out of both: an idle worker's poll that ends at its deadline is how
//! polling works, and their count follows the number of idle workers, not the traffic.

use std::time::Duration;

/// Error types (`error_type` label) that count against a release.
const SERVER_FAULTS: [&str; 5] = [
    "Internal",
    "Unavailable",
    "DeadlineExceeded",
    "ResourceExhausted",
    "Unknown",
];

/// Operations that wait for work or for an event, for up to a minute or so. The metrics do not
/// tell a history read that waits (a client awaiting a workflow's result) from one that does
/// not, so all of `GetWorkflowExecutionHistory` is left out.
const LONG_POLLS: [&str; 5] = [
    "PollWorkflowTaskQueue",
    "PollActivityTaskQueue",
    "PollNexusTaskQueue",
    "PollWorkflowExecutionUpdate",
    "GetWorkflowExecutionHistory",
];

/// Cumulative counters since the runtime process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub errors: u64,
}

/// Sums the counters of a Prometheus text exposition.
pub fn parse(text: &str) -> Counts {
    let mut c = Counts::default();
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        let frontend = series.contains("service_name=\"frontend\"");
        if label(series, "operation").is_some_and(|op| LONG_POLLS.contains(&op)) {
            continue;
        }
        if series.starts_with("service_requests{") && frontend {
            c.requests += v as u64;
        } else if series.starts_with("service_error_with_type{")
            && frontend
            && label(series, "error_type")
                .is_some_and(|t| SERVER_FAULTS.iter().any(|f| t.contains(f)))
        {
            c.errors += v as u64;
        }
    }
    c
}

fn label<'a>(series: &'a str, name: &str) -> Option<&'a str> {
    let start = series.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &series[start..];
    Some(&rest[..rest.find('"')?])
}

/// Reads a runtime's counters; `None` when its endpoint does not answer in time.
pub async fn scrape(http: &reqwest::Client, address: &str) -> Option<Counts> {
    let text = http
        .get(format!("http://{address}/metrics"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(parse(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_frontend_requests_and_server_faults_but_not_long_polls() {
        let text = r#"# HELP service_requests service_requests counter
service_requests{namespace="default",operation="DescribeNamespace",service_name="frontend"} 7
service_requests{namespace="default",operation="PollWorkflowTaskQueue",service_name="frontend"} 3
service_requests{namespace="default",operation="GetTaskQueueUserData",service_name="matching"} 40
service_error_with_type{error_type="serviceerror_NotFound",namespace="default",operation="DescribeWorkflowExecution",service_name="frontend"} 5
service_error_with_type{error_type="serviceerror_Unavailable",namespace="default",operation="StartWorkflowExecution",service_name="frontend"} 2
service_error_with_type{error_type="serviceerror_Internal",namespace="default",operation="StartWorkflowExecution",service_name="history"} 9
service_error_with_type{error_type="serviceerror_DeadlineExceeded",namespace="default",operation="PollActivityTaskQueue",service_name="frontend"} 4
"#;
        assert_eq!(
            parse(text),
            Counts {
                requests: 7,
                errors: 2
            },
            "long polls count neither as requests nor as errors"
        );
        assert_eq!(parse(""), Counts::default());
    }
}
