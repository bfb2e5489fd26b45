//! The inputs a torture run feeds to `redis-server`: every truncation of the
//! real nodes.conf files, and seeded random corruptions of them.
//!
//! Everything here is a pure function of the files and the seed, so a case is
//! reproduced from its name alone (`t3@417`: node 3's file cut to 417 bytes;
//! `r0042`: random case 42 of the seed).

use rand::{seq::IndexedRandom, Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One node's real nodes.conf.
#[derive(Debug, Clone)]
pub struct NodesFile {
    /// Index of the node in the cluster (0-based).
    pub node: usize,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Truncation,
    Random,
}

/// One input file and where it came from.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub family: Family,
    pub node: usize,
    /// For truncations: the cut keeps at least the lines before the last one
    /// (the loader must heal it and start).
    pub in_last_line: bool,
    /// For truncations: the last line is cut short (the loader must drop it
    /// with a warning naming it).
    pub torn_tail: bool,
    /// What was done to the file, for reports.
    pub what: String,
    pub bytes: Vec<u8>,
}

/// Where the last line of `bytes` starts: after the newline that ends the
/// line before it (a final newline belongs to the last line).
pub fn last_line_start(bytes: &[u8]) -> usize {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
}

/// Every cut of every file: byte offsets `0..=len` (the whole file included,
/// as the control), keeping every `stride`-th offset before the last line and
/// all of them inside it.
pub fn truncations(files: &[NodesFile], stride: usize) -> Vec<Case> {
    let stride = stride.max(1);
    let mut out = Vec::new();
    for f in files {
        let last = last_line_start(&f.bytes);
        for cut in 0..=f.bytes.len() {
            let in_last_line = cut >= last;
            if !in_last_line && cut % stride != 0 {
                continue;
            }
            out.push(Case {
                name: format!("t{}@{cut}", f.node),
                family: Family::Truncation,
                node: f.node,
                in_last_line,
                torn_tail: cut > last && cut < f.bytes.len(),
                what: format!(
                    "node {}'s file cut to {cut} of {} bytes",
                    f.node,
                    f.bytes.len()
                ),
                bytes: f.bytes[..cut].to_vec(),
            });
        }
    }
    out
}

/// `count` random corruptions; the same seed gives the same cases.
pub fn random(files: &[NodesFile], count: usize, seed: u64) -> Vec<Case> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count);
    if files.is_empty() {
        return out;
    }
    for i in 0..count {
        let f = &files[rng.random_range(0..files.len())];
        let mut lines = split_lines(&f.bytes);
        let ops = rng.random_range(1..=3);
        let mut what = Vec::new();
        for _ in 0..ops {
            what.push(mutate(&mut rng, &mut lines));
        }
        out.push(Case {
            name: format!("r{i:04}"),
            family: Family::Random,
            node: f.node,
            in_last_line: false,
            torn_tail: false,
            what: format!("node {}'s file: {}", f.node, what.join("; ")),
            bytes: lines.concat(),
        });
    }
    out
}

/// Lines with their terminators, so joining them gives the file back.
fn split_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Slot tokens the loader must reject or handle: out of range, reversed,
/// malformed migrating/importing entries, numbers that overflow.
const BAD_SLOTS: &[&str] = &[
    "16384",
    "-1",
    "0-16384",
    "5-3",
    "1-",
    "-",
    "abc",
    "12x",
    "99999999999999999999",
    "[",
    "[5",
    "[5-",
    "[5->-",
    "[5->-]",
    "[5-<-abc]",
    "[16384->-0123456789012345678901234567890123456789]",
    "[-1-<-0123456789012345678901234567890123456789]",
    "[5-x-0123456789012345678901234567890123456789]",
    "[5->-0123456789012345678901234567890123456789",
    "[]",
    "0-0-0",
];

const BLANK_LINES: &[&str] = &["\r\n", " \n", "\t\n", "   \t \n", "\n", " \r\n", "\x0b\n"];

const ODD_FIELDS: &[&str] = &[
    "",
    "x",
    "-",
    "-1",
    "0",
    "18446744073709551616",
    "connected,",
    "myself",
    "master,myself",
    "slave,master",
    "handshake",
    "bogus",
    "noflags",
    "fail?,fail,noaddr,nofailover",
    ":",
    "127.0.0.1",
    "127.0.0.1:99999@1",
    "127.0.0.1:1@99999",
    "127.0.0.1:-5@10",
    "\"quoted",
    "\"\\x00\"",
];

/// Parts for the address field after `ip:port@cport`: Redis 7.2+ writes
/// `,hostname` then aux fields `,name=value` (shard-id, nodename, tcp-port,
/// tls-port); 7.0 reads everything after the first comma as the hostname.
const ADDRESS_TAILS: &[&str] = &[
    ",",
    ",,",
    ",,,,",
    ",host,shard-id=xyz",
    ",,shard-id=",
    ",,shard-id=0123456789abcdef0123456789abcdef012345678",
    ",,shard-id=0123456789ABCDEF0123456789ABCDEF01234567",
    ",,tcp-port=99999",
    ",,tls-port=abc",
    ",,tls-port=",
    ",,tcp-port=-1",
    ",,bogus=1",
    ",,=",
    ",,x",
    ",,a=b=c",
    ",,nodename=n!",
    ",,shard-id=0123456789abcdef0123456789abcdef01234567,shard-id=0123456789abcdef0123456789abcdef01234567",
];

/// Apply one random change to `lines`; returns what it did.
fn mutate(rng: &mut ChaCha8Rng, lines: &mut Vec<Vec<u8>>) -> String {
    if lines.is_empty() {
        lines.push(b"\r\n".to_vec());
        return "empty file: added a CRLF line".into();
    }
    let n = lines.len();
    let li = rng.random_range(0..n);
    match rng.random_range(0..14) {
        0 => flip_byte(rng, lines, li),
        1 => {
            lines.remove(li);
            format!("deleted line {}", li + 1)
        }
        2 => {
            let to = rng.random_range(0..=n);
            let copy = lines[li].clone();
            lines.insert(to, copy);
            format!("line {} duplicated at {}", li + 1, to + 1)
        }
        3 => {
            let other = (li + rng.random_range(1..n.max(2))) % n;
            lines.swap(li, other);
            format!("swapped lines {} and {}", li + 1, other + 1)
        }
        4 => {
            let blank = *BLANK_LINES.choose(rng).unwrap_or(&"\r\n");
            let to = rng.random_range(0..=n);
            lines.insert(to, blank.as_bytes().to_vec());
            format!("blank line {blank:?} inserted at {}", to + 1)
        }
        5 => {
            let line = &mut lines[li];
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            line.extend_from_slice(b"\r\n");
            format!("line {} ends in CRLF", li + 1)
        }
        6 => long_ip(rng, lines, li),
        7 => bad_slot(rng, lines, li),
        8 => nul_run(rng, lines, li),
        9 => {
            let line = &mut lines[li];
            let at = rng.random_range(0..line.len());
            let end = (at + rng.random_range(1..=20)).min(line.len());
            line.drain(at..end);
            format!("line {}: bytes {at}..{end} deleted", li + 1)
        }
        10 => {
            let field = rng.random_range(0..9);
            let value = *ODD_FIELDS.choose(rng).unwrap_or(&"x");
            match replace_field(lines, li, field, |_| value.to_string()) {
                Some(l) => format!("line {l}: field {field} set to {value:?}"),
                None => "no node line to change".into(),
            }
        }
        11 => vars_line(rng, lines),
        12 => address_tail(rng, lines, li),
        _ => myself_flag(rng, lines, li),
    }
}

/// A flipped byte anywhere in the file.
fn flip_byte(rng: &mut ChaCha8Rng, lines: &mut [Vec<u8>], li: usize) -> String {
    let len = lines[li].len();
    let at = rng.random_range(0..len);
    let old = lines[li][at];
    let new = loop {
        let b: u8 = rng.random();
        if b != old {
            break b;
        }
    };
    lines[li][at] = new;
    format!("line {}: byte {at} {old:#04x}→{new:#04x}", li + 1)
}

/// An over-long IP in a node line's address field.
fn long_ip(rng: &mut ChaCha8Rng, lines: &mut [Vec<u8>], li: usize) -> String {
    let len = *[45usize, 46, 47, 64, 200, 1000].choose(rng).unwrap_or(&64);
    let ip: String = (0..len)
        .map(|_| *b"0123456789abcdef.:".choose(rng).unwrap_or(&b'1') as char)
        .collect();
    match replace_field(lines, li, 1, |addr| {
        let at = addr.rfind(':').unwrap_or(addr.len());
        format!("{ip}{}", &addr[at..])
    }) {
        Some(l) => format!("line {l}: IP of {len} characters"),
        None => "no node line for a long IP".into(),
    }
}

/// A bad slot token appended to a line.
fn bad_slot(rng: &mut ChaCha8Rng, lines: &mut [Vec<u8>], li: usize) -> String {
    let bad = *BAD_SLOTS.choose(rng).unwrap_or(&"16384");
    let line = &mut lines[li];
    let nl = line.last() == Some(&b'\n');
    if nl {
        line.pop();
    }
    line.push(b' ');
    line.extend_from_slice(bad.as_bytes());
    if nl {
        line.push(b'\n');
    }
    format!("line {}: slot token {bad:?} appended", li + 1)
}

/// A run of NUL bytes, written over the file or inserted.
fn nul_run(rng: &mut ChaCha8Rng, lines: &mut [Vec<u8>], li: usize) -> String {
    let run = rng.random_range(1..=64);
    let line = &mut lines[li];
    let at = rng.random_range(0..=line.len());
    if rng.random_bool(0.5) {
        line.splice(at..at, std::iter::repeat_n(0u8, run));
        format!("line {}: {run} NUL bytes inserted at {at}", li + 1)
    } else {
        let end = (at + run).min(line.len());
        line[at..end].fill(0);
        format!("line {}: bytes {at}..{end} set to NUL", li + 1)
    }
}

/// The vars line: a value lost, a value garbled, a token added.
fn vars_line(rng: &mut ChaCha8Rng, lines: &mut [Vec<u8>]) -> String {
    let Some(v) = lines.iter().position(|l| l.starts_with(b"vars")) else {
        return "no vars line".into();
    };
    let text = String::from_utf8_lossy(&lines[v]).into_owned();
    let mut fields: Vec<String> = text.split_whitespace().map(String::from).collect();
    let change = match rng.random_range(0..4) {
        0 => {
            fields.pop();
            "last value dropped"
        }
        1 => {
            fields.push("extra".into());
            "odd token added"
        }
        2 => {
            if let Some(last) = fields.last_mut() {
                *last = "18446744073709551616".into();
            }
            "value overflows"
        }
        _ => {
            if let Some(f) = fields.get_mut(2) {
                *f = "x1".into();
            }
            "currentEpoch not a number"
        }
    };
    lines[v] = format!("{}\n", fields.join(" ")).into_bytes();
    format!("vars line {}: {change}", v + 1)
}

/// The address field's tail (hostname, aux fields) replaced, or the
/// whole field quoted empty.
fn address_tail(rng: &mut ChaCha8Rng, lines: &mut [Vec<u8>], li: usize) -> String {
    let tail = *ADDRESS_TAILS.choose(rng).unwrap_or(&",");
    let empty = rng.random_bool(0.1);
    match replace_field(lines, li, 1, |addr| {
        if empty {
            "\"\"".to_string()
        } else {
            let end = addr.find(',').unwrap_or(addr.len());
            format!("{}{tail}", &addr[..end])
        }
    }) {
        Some(l) if empty => format!("line {l}: address field quoted empty"),
        Some(l) => format!("line {l}: address tail set to {tail:?}"),
        None => "no node line for an address tail".into(),
    }
}

/// A second `myself`, or the flag taken away.
fn myself_flag(rng: &mut ChaCha8Rng, lines: &mut [Vec<u8>], li: usize) -> String {
    let mine = lines
        .iter()
        .position(|l| l.windows(6).any(|w| w == b"myself"));
    match (mine, rng.random_bool(0.5)) {
        (Some(m), true) => match replace_field(lines, li, 2, |f| format!("myself,{f}")) {
            Some(l) => format!("line {l}: myself added (myself also on {})", m + 1),
            None => "no node line to mark myself".into(),
        },
        (Some(m), false) => match replace_field(lines, m, 2, |f| f.replace("myself,", "")) {
            Some(l) => format!("line {l}: myself flag removed"),
            None => "myself line unchanged".into(),
        },
        (None, _) => "no myself line".into(),
    }
}

/// Replace space-separated field `field` of the node line nearest to `li`
/// (searching forward, then from the top); returns the 1-based line changed.
fn replace_field(
    lines: &mut [Vec<u8>],
    li: usize,
    field: usize,
    f: impl FnOnce(&str) -> String,
) -> Option<usize> {
    let n = lines.len();
    let idx = (0..n).map(|k| (li + k) % n).find(|&k| {
        !lines[k].starts_with(b"vars") && lines[k].split(|&b| b == b' ').count() > field
    })?;
    let line = &lines[idx];
    let nl = line.last() == Some(&b'\n');
    let body = if nl {
        &line[..line.len() - 1]
    } else {
        &line[..]
    };
    let mut parts: Vec<Vec<u8>> = body.split(|&b| b == b' ').map(<[u8]>::to_vec).collect();
    let old = String::from_utf8_lossy(&parts[field]).into_owned();
    parts[field] = f(&old).into_bytes();
    let mut new = parts.join(&b' ');
    if nl {
        new.push(b'\n');
    }
    lines[idx] = new;
    Some(idx + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
1111111111111111111111111111111111111111 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
2222222222222222222222222222222222222222 127.0.0.1:7002@17002 master - 0 1700000000000 2 connected 5461-10922
3333333333333333333333333333333333333333 127.0.0.1:7003@17003 slave 1111111111111111111111111111111111111111 0 1700000000000 1 connected
vars currentEpoch 3 lastVoteEpoch 0
";

    fn files() -> Vec<NodesFile> {
        vec![
            NodesFile {
                node: 0,
                bytes: FILE.as_bytes().to_vec(),
            },
            NodesFile {
                node: 1,
                bytes: FILE
                    .replace("myself,master", "master")
                    .replacen("master - 0 1700000000000 2", "myself,master - 0 0 2", 1)
                    .into_bytes(),
            },
        ]
    }

    #[test]
    fn last_line_is_the_vars_line() {
        let start = last_line_start(FILE.as_bytes());
        assert!(FILE[start..].starts_with("vars currentEpoch"));
        assert_eq!(last_line_start(b"one line"), 0);
        assert_eq!(last_line_start(b"a\nb"), 2);
        assert_eq!(last_line_start(b"a\nb\n"), 2);
    }

    #[test]
    fn every_offset_is_cut_and_the_last_line_is_marked() {
        let f = files();
        let all = truncations(&f, 1);
        let total: usize = f.iter().map(|f| f.bytes.len() + 1).sum();
        assert_eq!(all.len(), total);
        let last = all.iter().filter(|c| c.in_last_line && c.node == 0).count();
        let vars = "vars currentEpoch 3 lastVoteEpoch 0\n".len();
        assert_eq!(last, vars + 1);
        // Neither the cut at the line's start nor the whole file is torn.
        let torn = all.iter().filter(|c| c.torn_tail && c.node == 0).count();
        assert_eq!(torn, vars - 1);
        assert!(all.iter().all(|c| c.family == Family::Truncation));
        // A stride thins only the cuts before the last line.
        let thin = truncations(&f, 10);
        assert_eq!(
            thin.iter().filter(|c| c.in_last_line).count(),
            all.iter().filter(|c| c.in_last_line).count()
        );
        assert!(thin.len() < all.len() / 3);
    }

    #[test]
    fn random_cases_are_seeded_and_change_the_file() {
        let f = files();
        let a = random(&f, 300, 7);
        let b = random(&f, 300, 7);
        let c = random(&f, 300, 8);
        assert_eq!(a.len(), 300);
        assert!(a
            .iter()
            .zip(&b)
            .all(|(x, y)| x.bytes == y.bytes && x.what == y.what));
        assert!(a.iter().zip(&c).any(|(x, y)| x.bytes != y.bytes));
        let changed = a.iter().filter(|c| c.bytes != f[c.node].bytes).count();
        assert!(
            changed > 280,
            "only {changed} of 300 differ from the original"
        );
        // The families the corpus promises all occur.
        for needle in [
            "NUL",
            "CRLF",
            "IP of",
            "slot token",
            "duplicated",
            "swapped",
            "deleted line",
            "blank line",
            "byte",
            "address tail",
            "address field quoted empty",
        ] {
            assert!(
                a.iter().any(|c| c.what.contains(needle)),
                "no case does `{needle}`"
            );
        }
    }
}
