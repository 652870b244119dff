//! Checks a recorded history: every rows table and the set of tables are grow-only sets of
//! unique elements, and a history of such sets is linearizable exactly when
//!
//! 1. a read holds every element whose add was acknowledged before the read began;
//! 2. a read holds only elements whose add began before the read ended and was not refused;
//! 3. reads that follow each other in real time never shrink, and any two reads are nested
//!    (one holds the other: the set only grows, so every read is a prefix of one order);
//! 4. a read that holds an element also holds every element acknowledged before that
//!    element's add began.
//!
//! Split brain is checked on the coordinators' logs: in no term may two nodes acknowledge
//! writes as leader.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::history::{Event, Op, Outcome};

/// One add to a set, as the checker sees it.
#[derive(Clone, Debug)]
struct Add {
    invoke: Duration,
    complete: Duration,
    acknowledged: bool,
    refused: bool,
}

/// One read of a set.
#[derive(Clone, Debug)]
struct Read {
    invoke: Duration,
    complete: Duration,
    elements: BTreeSet<String>,
    what: String,
}

/// Every violation found, as readable sentences (empty: the history is linearizable).
pub fn check(events: &[Event]) -> Vec<String> {
    let mut sets: BTreeMap<String, (BTreeMap<String, Add>, Vec<Read>)> = BTreeMap::new();
    for e in events {
        let add = |sets: &mut BTreeMap<String, (BTreeMap<String, Add>, Vec<Read>)>,
                   set: String,
                   element: String| {
            sets.entry(set).or_default().0.insert(
                element,
                Add {
                    invoke: e.invoke,
                    complete: e.complete,
                    acknowledged: e.acknowledged(),
                    refused: matches!(e.outcome, Outcome::Failed(_)),
                },
            );
        };
        match (&e.op, &e.outcome) {
            (Op::CreateTable { name }, _) => add(&mut sets, "tables".into(), name.clone()),
            (Op::Insert { table, value }, _) => add(&mut sets, table.clone(), value.to_string()),
            (Op::ReadRows { table }, Outcome::Rows(rows)) => {
                sets.entry(table.clone()).or_default().1.push(Read {
                    invoke: e.invoke,
                    complete: e.complete,
                    elements: rows.iter().map(i64::to_string).collect(),
                    what: format!(
                        "read of {table} by client {} on coordinator {}",
                        e.client, e.coordinator
                    ),
                });
            }
            (Op::ReadTables, Outcome::Tables(tables)) => {
                // Only the tables this load creates take part; the rows tables exist from
                // the start.
                let elements = tables
                    .iter()
                    .filter(|t| t.starts_with("ddl_"))
                    .cloned()
                    .collect();
                sets.entry("tables".into()).or_default().1.push(Read {
                    invoke: e.invoke,
                    complete: e.complete,
                    elements,
                    what: format!(
                        "SHOW TABLES by client {} on coordinator {}",
                        e.client, e.coordinator
                    ),
                });
            }
            _ => {}
        }
    }
    let mut violations = Vec::new();
    for (set, (adds, reads)) in &sets {
        check_set(set, adds, reads, &mut violations);
    }
    violations
}

fn check_set(
    set: &str,
    adds: &BTreeMap<String, Add>,
    reads: &[Read],
    violations: &mut Vec<String>,
) {
    let acknowledged: Vec<(&String, &Add)> = adds.iter().filter(|(_, a)| a.acknowledged).collect();
    for read in reads {
        // 1. No acknowledged add is lost.
        for (element, add) in &acknowledged {
            if add.complete < read.invoke && !read.elements.contains(*element) {
                violations.push(format!(
                    "{set}: {element} was acknowledged at {:?} but the {} that began at {:?} does not hold it",
                    add.complete, read.what, read.invoke
                ));
            }
        }
        for element in &read.elements {
            // 2. Nothing appears that was never added, added later, or refused.
            match adds.get(element) {
                None => violations.push(format!(
                    "{set}: the {} holds {element}, which no client added",
                    read.what
                )),
                Some(add) if add.invoke > read.complete => violations.push(format!(
                    "{set}: the {} ended at {:?} holding {element}, whose add began later ({:?})",
                    read.what, read.complete, add.invoke
                )),
                Some(add) if add.refused => violations.push(format!(
                    "{set}: the {} holds {element}, whose add was refused",
                    read.what
                )),
                Some(add) => {
                    // 4. Whatever was acknowledged before this element's add began is there too.
                    for (earlier, earlier_add) in &acknowledged {
                        if earlier_add.complete < add.invoke && !read.elements.contains(*earlier) {
                            violations.push(format!(
                                "{set}: the {} holds {element} but not {earlier}, acknowledged before {element}'s add began",
                                read.what
                            ));
                        }
                    }
                }
            }
        }
    }
    // 3. Reads never go back in time and are always nested.
    for (i, a) in reads.iter().enumerate() {
        for b in &reads[i + 1..] {
            let (first, second) = if a.complete <= b.invoke {
                (a, b)
            } else {
                (b, a)
            };
            if first.complete < second.invoke && !first.elements.is_subset(&second.elements) {
                let missing: Vec<&String> = first
                    .elements
                    .difference(&second.elements)
                    .take(3)
                    .collect();
                violations.push(format!(
                    "{set}: the {} (began {:?}) lacks {missing:?}, seen by the earlier {} (ended {:?})",
                    second.what, second.invoke, first.what, first.complete
                ));
            } else if !a.elements.is_subset(&b.elements) && !b.elements.is_subset(&a.elements) {
                violations.push(format!(
                    "{set}: the {} and the {} saw sets that no single order explains",
                    a.what, b.what
                ));
            }
        }
    }
}

/// `(term, leader)` of every `write acknowledged` line in a coordinator's log.
fn acknowledgements(log: &str) -> Vec<(u64, u64)> {
    log.lines()
        .filter(|line| line.contains("write acknowledged"))
        .filter_map(|line| Some((field(line, "term=")?, field(line, "leader=")?)))
        .collect()
}

fn field(line: &str, key: &str) -> Option<u64> {
    let start = line.find(key)? + key.len();
    let digits: String = line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Terms in which more than one node acknowledged writes as leader, from every coordinator's
/// log; also returns how many acknowledgements were read.
pub fn split_brain(logs: &BTreeMap<u64, String>) -> (Vec<String>, usize) {
    let mut leaders: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    let mut count = 0;
    for log in logs.values() {
        for (term, leader) in acknowledgements(log) {
            leaders.entry(term).or_default().insert(leader);
            count += 1;
        }
    }
    let violations = leaders
        .into_iter()
        .filter(|(_, l)| l.len() > 1)
        .map(|(term, l)| format!("term {term} had writes acknowledged by leaders {l:?}"))
        .collect();
    (violations, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn insert(value: i64, invoke: u64, complete: u64, outcome: Outcome) -> Event {
        Event {
            client: 0,
            coordinator: 1,
            op: Op::Insert {
                table: "rows_0".into(),
                value,
            },
            invoke: ms(invoke),
            complete: ms(complete),
            outcome,
        }
    }

    fn read(values: &[i64], invoke: u64, complete: u64) -> Event {
        Event {
            client: 1,
            coordinator: 2,
            op: Op::ReadRows {
                table: "rows_0".into(),
            },
            invoke: ms(invoke),
            complete: ms(complete),
            outcome: Outcome::Rows(values.iter().copied().collect()),
        }
    }

    #[test]
    fn a_linearizable_history_passes() {
        let history = vec![
            insert(1, 0, 10, Outcome::Ok),
            insert(2, 5, 30, Outcome::Unknown("timeout".into())),
            read(&[1], 12, 20),
            read(&[1, 2], 25, 40),
            insert(3, 50, 60, Outcome::Unknown("unavailable".into())),
            read(&[1, 2], 70, 80),
        ];
        assert_eq!(check(&history), Vec::<String>::new());
    }

    #[test]
    fn a_lost_write_is_found() {
        let history = vec![insert(1, 0, 10, Outcome::Ok), read(&[], 20, 30)];
        let v = check(&history);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("acknowledged"), "{v:?}");
    }

    #[test]
    fn a_phantom_and_a_refused_write_are_found() {
        let history = vec![
            insert(1, 0, 10, Outcome::Failed("bad".into())),
            read(&[1, 9], 20, 30),
        ];
        let v = check(&history);
        assert_eq!(v.len(), 2, "{v:?}");
    }

    #[test]
    fn a_stale_read_after_a_newer_one_is_found() {
        let history = vec![
            insert(1, 0, 100, Outcome::Unknown("timeout".into())),
            read(&[1], 10, 20),
            read(&[], 30, 40),
        ];
        let v = check(&history);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("lacks"), "{v:?}");
    }

    #[test]
    fn reads_that_no_order_explains_are_found() {
        let history = vec![
            insert(1, 0, 100, Outcome::Unknown("timeout".into())),
            insert(2, 0, 100, Outcome::Unknown("timeout".into())),
            read(&[1], 10, 50),
            read(&[2], 20, 60),
        ];
        let v = check(&history);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("no single order"), "{v:?}");
    }

    #[test]
    fn a_read_that_skips_an_earlier_acknowledged_write_is_found() {
        let history = vec![
            insert(1, 0, 10, Outcome::Ok),
            insert(2, 20, 100, Outcome::Unknown("timeout".into())),
            // Began before 1 was acknowledged, so rule 1 alone would accept it.
            read(&[2], 5, 50),
        ];
        let v = check(&history);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("not 1"), "{v:?}");
    }

    #[test]
    fn two_leaders_in_one_term_are_found() {
        let logs = BTreeMap::from([
            (1, "x write acknowledged term=3 leader=1 index=7\n".to_string()),
            (2, "y write acknowledged term=3 leader=2 index=8\nz write acknowledged term=4 leader=2 index=9\n".to_string()),
        ]);
        let (violations, count) = split_brain(&logs);
        assert_eq!(count, 3);
        assert_eq!(
            violations,
            vec!["term 3 had writes acknowledged by leaders {1, 2}"]
        );
    }
}
