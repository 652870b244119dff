//! Reading distributed EXPLAIN text in tests: which stage a plan line is in, and a form with
//! executor addresses replaced so that snapshots do not depend on ports.

use std::collections::HashMap;

/// The stage header (`Stage 2`, or `DistributedExec` for the head stage) of the first line
/// that contains `needle`.
pub fn stage_of(plan: &str, needle: &str) -> Option<String> {
    let mut current = None;
    for line in plan.lines() {
        if let Some(header) = line.split("┌───── ").nth(1) {
            current = Some(
                header
                    .split(" ──")
                    .next()
                    .unwrap_or(header)
                    .trim()
                    .to_string(),
            );
        }
        if line.contains(needle) {
            return current;
        }
    }
    None
}

/// `plan` with every `http://127.0.0.1:PORT` replaced by `executor-N`, numbered in order of
/// first appearance.
pub fn without_addresses(plan: &str) -> String {
    let mut names: HashMap<String, String> = HashMap::new();
    let mut out = String::with_capacity(plan.len());
    let mut rest = plan;
    while let Some(start) = rest.find("http://127.0.0.1:") {
        out.push_str(&rest[..start]);
        let tail = &rest[start + "http://127.0.0.1:".len()..];
        let digits = tail.chars().take_while(char::is_ascii_digit).count();
        let address = &rest[start..start + "http://127.0.0.1:".len() + digits];
        let next = names.len();
        let name = names
            .entry(address.to_string())
            .or_insert_with(|| format!("executor-{next}"));
        out.push_str(name);
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_numbered_by_first_appearance() {
        assert_eq!(
            without_addresses(
                "a http://127.0.0.1:4000 b http://127.0.0.1:39 c http://127.0.0.1:4000"
            ),
            "a executor-0 b executor-1 c executor-0"
        );
    }

    #[test]
    fn lines_belong_to_the_last_opened_stage() {
        let plan = "┌───── DistributedExec ── Tasks: t0:[p0]\n│ X\n└──\n  ┌───── Stage 1 ── tasks=2\n  │ Y\n  └──";
        assert_eq!(stage_of(plan, "X").as_deref(), Some("DistributedExec"));
        assert_eq!(stage_of(plan, "Y").as_deref(), Some("Stage 1"));
        assert_eq!(stage_of(plan, "Z"), None);
    }
}
