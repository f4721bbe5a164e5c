//! Benchmark of listing runs over a datastore of 1,000 runs: the read API alone
//! (`Client::list_runs`, what `flowc runs` and every `latest` path do) and the whole
//! `flowc runs` command as a user runs it (process start included). Each run's
//! `run.json` carries the IR of a real fixture flow, as `flowc run` writes it, since
//! the IR is most of the bytes a listing reads. Target: a few tens of milliseconds for
//! the command. See `docs/inspect.md` for measured numbers.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use flowc::FrontendOptions;
use flowc_shim::client::Client;
use flowc_shim::store::{FlowName, LocalStore, RunId, RunMeta, RunSpec, RunStatus};

const RUNS: u64 = 1_000;

/// The fixture whose IR every run records: branches, a foreach and parameters, so the
/// IR is as large as a real flow's.
const FIXTURE: &str = "fixtures/flows/valid/branch_foreach_training.py";

/// A temporary datastore holding [`RUNS`] runs of one flow, removed on drop.
struct Store {
    root: PathBuf,
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Writes the runs' `run.json` files directly (the layout `LocalStore` reads), without
/// the store's per-file `fsync`: setting up 1,000 runs should not take longer than
/// measuring them.
fn store_of_runs() -> Store {
    let path = repo_root().join(FIXTURE);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let checked = flowc::check(FIXTURE, &text, &FrontendOptions::default());
    let flow = checked
        .flow
        .unwrap_or_else(|| panic!("{FIXTURE} defines no flow"));
    let flow_ir = serde_json::to_value(&flow).unwrap_or_else(|e| panic!("IR to JSON: {e}"));
    let name = FlowName::new(&flow.name).unwrap_or_else(|e| panic!("{e}"));

    let root = std::env::temp_dir().join(format!("flowc-bench-runs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let store = LocalStore::open_or_create(&root).unwrap_or_else(|e| panic!("{e}"));
    let layout = store.layout();
    for i in 1..=RUNS {
        let run_id = RunId::new(&i.to_string()).unwrap_or_else(|e| panic!("{e}"));
        let spec = RunSpec {
            parameters: [("alpha".to_owned(), serde_json::json!(0.5))].into(),
            source_sha256: "ab".repeat(32),
            flow_ir: flow_ir.clone(),
            origin_run_id: None,
            ..RunSpec::default()
        };
        let created = 1_767_225_600_000 + i * 60_000;
        let mut meta = RunMeta::new(name.clone(), run_id.clone(), spec, created);
        meta.status = if i % 7 == 0 {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        meta.finished_at_unix_ms = Some(created + 42_000);
        let file = layout.run_meta_path(&name, &run_id);
        std::fs::create_dir_all(layout.run_dir(&name, &run_id)).unwrap_or_else(|e| panic!("{e}"));
        let bytes = serde_json::to_vec_pretty(&meta).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&file, bytes).unwrap_or_else(|e| panic!("{e}"));
    }
    Store { root }
}

fn listing(c: &mut Criterion) {
    let store = store_of_runs();
    let client = Client::open(&store.root).unwrap_or_else(|e| panic!("{e}"));
    let check = client.list_runs(None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(check.runs.len() as u64, RUNS);
    assert!(check.unreadable.is_empty());

    let mut group = c.benchmark_group("runs");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("list_1000", |b| {
        b.iter(|| client.list_runs(black_box(None)));
    });
    let flowc = env!("CARGO_BIN_EXE_flowc");
    group.bench_function("flowc_runs_1000", |b| {
        b.iter(|| {
            let out = Command::new(flowc)
                .args(["runs", "--datastore-root"])
                .arg(&store.root)
                .env("NO_COLOR", "1")
                .output()
                .unwrap_or_else(|e| panic!("cannot run flowc: {e}"));
            assert!(out.status.success());
            out.stdout.len()
        });
    });
    group.finish();
}

criterion_group!(benches, listing);
criterion_main!(benches);
