//! Benchmark of `flowc::check` (frontend + lint: source to checked IR) on generated
//! flows of 10, 100 and 1000 steps, of the frontend alone and of tree-sitter's parse
//! alone on the same flows, and of `check` on every fixture and example flow. Target: a 1000-step flow in under 50 ms,
//! time growing linearly with the number of steps. See `bench/README.md`.

mod flowgen;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flowc::FrontendOptions;

const SIZES: [usize; 3] = [10, 100, 1000];

/// The seed of the generated flows: fixed, so every run measures the same text.
const SEED: u64 = 42;

/// Generates the flow of `steps` steps and makes sure it checks clean: a benchmark of
/// the error path would measure the wrong thing.
fn generated(steps: usize) -> String {
    let text = flowgen::flow(steps, SEED);
    let checked = flowc::check("generated.py", &text, &FrontendOptions::default());
    let errors: Vec<String> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{} {}", d.code, d.message))
        .collect();
    assert!(
        errors.is_empty(),
        "generated {steps}-step flow does not check clean: {errors:#?}"
    );
    assert_eq!(checked.flow.map(|f| f.steps.len()), Some(steps));
    text
}

fn generated_flows(c: &mut Criterion) {
    let flows: Vec<(usize, String)> = SIZES.iter().map(|&n| (n, generated(n))).collect();

    let mut group = c.benchmark_group("check");
    for (steps, text) in &flows {
        // `steps` is at most 1000, so the conversion is lossless.
        group.throughput(Throughput::Elements(*steps as u64));
        group.bench_with_input(BenchmarkId::new("steps", steps), text, |b, text| {
            b.iter(|| flowc::check("generated.py", black_box(text), &FrontendOptions::default()));
        });
    }
    group.finish();

    // The floor: tree-sitter's parse alone, which every frontend built on it pays.
    let mut group = c.benchmark_group("tree-sitter");
    for (steps, text) in &flows {
        group.throughput(Throughput::Elements(*steps as u64));
        group.bench_with_input(BenchmarkId::new("steps", steps), text, |b, text| {
            let mut parser = tree_sitter::Parser::new();
            let language = tree_sitter::Language::new(tree_sitter_python::LANGUAGE);
            if let Err(e) = parser.set_language(&language) {
                panic!("tree-sitter-python does not load: {e}");
            }
            b.iter(|| parser.parse(black_box(text), None));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("frontend");
    for (steps, text) in &flows {
        group.throughput(Throughput::Elements(*steps as u64));
        group.bench_with_input(BenchmarkId::new("steps", steps), text, |b, text| {
            b.iter(|| {
                flowc::frontend::parse("generated.py", black_box(text), &FrontendOptions::default())
            });
        });
    }
    group.finish();
}

fn python_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            python_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "py") {
            out.push(path);
        }
    }
}

/// Every fixture flow (valid and invalid: the error paths cost time too) and every
/// example: the real-sized flows users write.
fn fixture_flows(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let fixtures = root.join("fixtures").join("flows");
    let mut files = Vec::new();
    python_files(&fixtures, &mut files);
    python_files(&root.join("examples"), &mut files);

    let mut group = c.benchmark_group("fixture");
    // Fixtures are small and many; a short measurement keeps the whole run quick.
    group.measurement_time(Duration::from_millis(500));
    group.warm_up_time(Duration::from_millis(200));
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        // `valid/cards.py`, `invalid/unknown_step.py`, `examples/hello.py`.
        let name = path
            .strip_prefix(&fixtures)
            .or_else(|_| path.strip_prefix(&root))
            .unwrap_or(&path)
            .display()
            .to_string();
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(&name), &text, |b, text| {
            b.iter(|| flowc::check(&name, black_box(text), &FrontendOptions::default()));
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = generated_flows, fixture_flows
}
criterion_main!(benches);
