//! Measures the local datastore's put and get throughput on one large artifact, for
//! the numbers in `docs/datastore.md`.
//!
//! ```text
//! cargo run --release -p flowc-shim --example store_throughput -- [--size-mib 500] [--levels 1,3] [--dir /tmp]
//! ```
//!
//! For each data kind and zstd level it writes the artifact to a file (page-cached, as
//! a harness's spill file would be), then times `put_file` into a fresh store,
//! `get_to_file` back out, and `get_to_writer` into a sink that discards (the read path
//! without the output file's cost). Everything it creates is removed at the end.
//!
//! Two rates are printed per operation: wall-clock (what a user waits, including the
//! disk and any other load on the machine) and CPU (bytes per second of this thread's
//! on-CPU time, from Linux's `/proc/thread-self/schedstat`: the cost of hashing and
//! compression alone, stable on a busy machine).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use flowc_shim::store::{BlobStore, FlowName, LocalStore, StoreOptions};

/// What the artifact's bytes look like.
#[derive(Clone, Copy)]
enum Kind {
    /// Incompressible: the worst case for time spent per byte saved.
    Random,
    /// A float64 time series with noise, like a pickled numeric array.
    Floats,
    /// Small int64 counters, like a pickled array of labels or ids.
    Ints,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Random => "random",
            Kind::Floats => "float64",
            Kind::Ints => "int64",
        }
    }
}

struct Args {
    size_mib: u64,
    levels: Vec<i32>,
    dir: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        size_mib: 500,
        levels: vec![1, 3],
        dir: std::env::temp_dir(),
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let value = iter
            .next()
            .ok_or_else(|| format!("`{flag}` needs a value"))?;
        match flag.as_str() {
            "--size-mib" => {
                args.size_mib = value
                    .parse()
                    .map_err(|_| format!("--size-mib: not a number: {value}"))?;
            }
            "--levels" => {
                args.levels = value
                    .split(',')
                    .map(|l| l.trim().parse::<i32>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| format!("--levels: expected e.g. 1,3, got {value}"))?;
            }
            "--dir" => args.dir = PathBuf::from(value),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

/// Writes `len` bytes of `kind` to `path` in 1 MiB chunks.
fn write_input(path: &Path, kind: Kind, len: u64) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut chunk = Vec::with_capacity(1 << 20);
    let mut written = 0u64;
    let mut i = 0u64;
    while written < len {
        chunk.clear();
        while chunk.len() < (1 << 20) {
            let word = match kind {
                Kind::Random => next(),
                Kind::Floats => {
                    let noise = (next() % 1000) as f64 / 1e6;
                    ((i as f64 * 1e-4).sin() * 100.0 + noise).to_bits()
                }
                Kind::Ints => next() % 16,
            };
            chunk.extend_from_slice(&word.to_le_bytes());
            i += 1;
        }
        let take = usize::try_from((len - written).min(chunk.len() as u64)).unwrap_or(0);
        out.write_all(&chunk[..take])?;
        written += take as u64;
    }
    out.flush()
}

/// A writer that drops everything.
struct Discard;

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn mib_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / time.as_secs_f64()
}

/// This thread's on-CPU time so far, where the kernel reports it.
fn thread_cpu_time() -> Option<Duration> {
    let text = fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Wall-clock and CPU time of one operation.
struct Timing {
    wall: Duration,
    cpu: Option<Duration>,
}

fn timed<T>(op: impl FnOnce() -> T) -> (T, Timing) {
    let cpu_start = thread_cpu_time();
    let start = Instant::now();
    let value = op();
    let wall = start.elapsed();
    let cpu = match (cpu_start, thread_cpu_time()) {
        (Some(a), Some(b)) => b.checked_sub(a),
        _ => None,
    };
    (value, Timing { wall, cpu })
}

/// "wall/cpu" rates in MiB/s.
fn rates(bytes: u64, timing: &Timing) -> String {
    let cpu = timing
        .cpu
        .filter(|d| !d.is_zero())
        .map_or_else(|| "-".to_owned(), |d| format!("{:.0}", mib_per_s(bytes, d)));
    format!("{:.0}/{cpu}", mib_per_s(bytes, timing.wall))
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let work = args
        .dir
        .join(format!("flowc-store-throughput-{}", std::process::id()));
    fs::create_dir_all(&work)?;
    let result = measure(args, &work);
    fs::remove_dir_all(&work)?;
    result
}

fn measure(args: &Args, work: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let len = args.size_mib << 20;
    let flow = FlowName::new("ThroughputFlow")?;
    println!("rates in MiB/s, wall-clock/CPU");
    println!(
        "{:<8} {:>5} {:>7} {:>11} {:>11} {:>11}",
        "data", "level", "ratio", "put", "get→file", "get→discard"
    );
    for kind in [Kind::Random, Kind::Floats, Kind::Ints] {
        let input = work.join(format!("input-{}", kind.name()));
        write_input(&input, kind, len)?;
        for &level in &args.levels {
            let root = work.join(format!("store-{}-{level}", kind.name()));
            let store = LocalStore::open_or_create_with(
                &root,
                StoreOptions {
                    compression_level: level,
                },
            )?;

            let (stored, put) = timed(|| store.put_file(&flow, &input));
            let stored = stored?;
            let compressed = fs::metadata(store.layout().blob_path(&flow, &stored.hash))?.len();

            let output = work.join("output");
            let (got, get_file) = timed(|| store.get_to_file(&flow, &stored.hash, &output));
            got?;
            fs::remove_file(&output)?;

            let (got, get_discard) = timed(|| {
                store.get_to_writer(&flow, &stored.hash, &mut Discard, Path::new("discard"))
            });
            got?;

            println!(
                "{:<8} {:>5} {:>7.3} {:>11} {:>11} {:>11}",
                kind.name(),
                level,
                compressed as f64 / len as f64,
                rates(len, &put),
                rates(len, &get_file),
                rates(len, &get_discard),
            );
            fs::remove_dir_all(&root)?;
        }
        fs::remove_file(&input)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
