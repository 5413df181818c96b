//! `load` never panics, whatever the bytes: mutations of every fixture plus random bytes, from a fixed
//! seed so a failure reproduces.

use std::path::Path;

use sandbox::manifest::load;

use crate::util::{fixtures, options};

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

/// Bytes that matter to YAML and to our schema, to make mutations interesting.
const TOKENS: &[&[u8]] = &[
    b":",
    b"-",
    b" ",
    b"\n",
    b"  ",
    b"[",
    b"]",
    b"{",
    b"}",
    b"&a",
    b"*a",
    b"<<: *a",
    b"'",
    b"\"",
    b"#",
    b"!!str ",
    b"${",
    b"}",
    b"$$",
    b"${X:?m}",
    b"\t",
    b"|",
    b">",
    b"---\n",
    b"...",
    b"~",
    b"null",
    b"true",
    b"0",
    b"65536",
    b"depends_on: [a]",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"%YAML 1.2\n",
    b"? ",
    b"services:",
    b"image: x",
];

fn mutate(random: &mut Random, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..1 + random.below(8) {
        let position = random.below(bytes.len() + 1);
        match random.below(6) {
            0 if !bytes.is_empty() => {
                let end = (position + random.below(16)).min(bytes.len());
                bytes.drain(position.min(end)..end);
            }
            1 => {
                let token = TOKENS[random.below(TOKENS.len())];
                bytes.splice(position..position, token.iter().copied());
            }
            2 if position < bytes.len() => bytes[position] = random.next() as u8,
            3 => bytes.truncate(position),
            4 if !bytes.is_empty() => {
                // duplicate a slice somewhere else
                let start = random.below(bytes.len());
                let end = (start + random.below(64)).min(bytes.len());
                let slice: Vec<u8> = bytes[start..end].to_vec();
                let at = random.below(bytes.len() + 1);
                bytes.splice(at..at, slice);
            }
            _ => {
                let alphabet = b"\n :-[{\"'&*!|>%@`$";
                bytes.insert(
                    position.min(bytes.len()),
                    alphabet[random.below(alphabet.len())],
                );
            }
        }
    }
    bytes
}

/// `SANDBOX_FUZZ_ITERATIONS=100000` runs a longer search locally; the default keeps CI fast.
fn iterations(default: usize) -> usize {
    std::env::var("SANDBOX_FUZZ_ITERATIONS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(default)
}

fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for kind in ["valid", "invalid"] {
        let mut paths: Vec<_> = std::fs::read_dir(fixtures(kind))
            .expect("fixtures")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "yaml")
            })
            .collect();
        paths.sort();
        seeds.extend(paths.iter().map(|path| std::fs::read(path).expect("read")));
    }
    seeds
}

fn load_bytes(directory: &Path, bytes: &[u8]) {
    std::fs::write(directory.join("sandbox.yaml"), bytes).expect("write");
    // Ok or Err are both fine; a panic fails the test.
    let _ = load(&options(directory, "sandbox.yaml"));
}

#[test]
fn mutated_manifests_never_panic() {
    let directory = tempfile::tempdir().expect("temp dir");
    let seeds = seeds();
    let mut random = Random(0x5eed_0f5a_4db0_c5e5);
    for _ in 0..iterations(3000) {
        let seed = &seeds[random.below(seeds.len())];
        load_bytes(directory.path(), &mutate(&mut random, seed));
    }
}

#[test]
fn random_bytes_never_panic() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut random = Random(0xdead_beef_cafe_f00d);
    for _ in 0..iterations(500) {
        let length = random.below(512);
        let bytes: Vec<u8> = (0..length)
            .map(|_| {
                // mostly YAML-ish characters, sometimes anything
                if random.below(4) == 0 {
                    random.next() as u8
                } else {
                    let alphabet = b"ab :-\n[]{},'\"&*!|>#$~0123456789";
                    alphabet[random.below(alphabet.len())]
                }
            })
            .collect();
        load_bytes(directory.path(), &bytes);
    }
}

#[test]
fn hostile_shapes_are_refused_quickly() {
    let directory = tempfile::tempdir().expect("temp dir");
    let deep = "[".repeat(200_000);
    let mut laughs = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..40 {
        laughs.push_str(&format!(
            "a{level}: &a{level} [{}]\n",
            vec![format!("*a{}", level - 1); 10].join(", ")
        ));
    }
    laughs.push_str("services:\n  web:\n    image: nginx\n    command: *a39\n");
    let mut merges = String::from("base: &base {");
    merges.push_str(
        &(0..2000)
            .map(|index| format!("k{index}: v"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    merges.push_str("}\n");
    for index in 0..2000 {
        merges.push_str(&format!("m{index}: {{<<: *base}}\n"));
    }
    let nested_variables = format!(
        "services:\n  web:\n    image: \"{}x{}\"\n",
        "${A:-".repeat(5000),
        "}".repeat(5000)
    );
    for text in [deep, laughs, merges, nested_variables] {
        let started = std::time::Instant::now();
        std::fs::write(directory.path().join("sandbox.yaml"), &text).expect("write");
        let result = load(&options(directory.path(), "sandbox.yaml"));
        assert!(result.is_err());
        assert!(
            started.elapsed().as_secs() < 10,
            "took {:?}",
            started.elapsed()
        );
    }
}
