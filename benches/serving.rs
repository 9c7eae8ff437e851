//! Speed of the request-level engine: 100,000 requests on one instance
//! (`scenarios/serving-100k-h100.toml`). Prints events per second once.

use std::path::PathBuf;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use planner::{Catalog, CatalogSources, Scenario};

fn scenario() -> Scenario {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let catalog = Catalog::from_sources(&CatalogSources::read_dir(&root).unwrap()).unwrap();
    let file = root.join("scenarios/serving-100k-h100.toml");
    Scenario::from_toml(
        "serving-100k-h100.toml",
        &std::fs::read_to_string(file).unwrap(),
        &catalog,
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let scenario = scenario();
    let start = Instant::now();
    let run = planner::serving::simulate(&scenario, None).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let s = run.report.serving.as_ref().unwrap();
    eprintln!(
        "100,000 requests: {} events in {seconds:.2} s = {:.0} events/s ({} iterations)",
        s.events,
        s.events as f64 / seconds,
        s.instances[0].iterations
    );
    let mut group = c.benchmark_group("serving");
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(20));
    group.bench_function("100k_requests_one_instance", |b| {
        b.iter(|| planner::serving::simulate(&scenario, None).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
