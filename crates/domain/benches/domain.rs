//! Micro-benchmarks of the rules on the hot paths: evaluating every gate of a 33-item run
//! (done on every run read, to show what blocks each transition) and parsing and rendering
//! the EduLibra Markdown template.

#![expect(clippy::expect_used, reason = "a benchmark set-up fails loudly")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use shipshape_domain::item::ItemStatus;
use shipshape_domain::run::{
    RunFacts, RunStatus, TransitionAction, available_transitions, blockers,
};
use shipshape_domain::{EDULIBRA_TEMPLATE_MD, markdown};

fn edulibra_run(status: RunStatus) -> RunFacts {
    let t = markdown::parse(EDULIBRA_TEMPLATE_MD).expect("the built-in template parses");
    let mut facts = RunFacts::planned(&t, chrono::Utc::now());
    facts.status = status;
    // Half done, so the gates have work to do.
    for item in facts.items.iter_mut().step_by(2) {
        item.status = ItemStatus::Done;
    }
    facts
}

fn gates(c: &mut Criterion) {
    let preparing = edulibra_run(RunStatus::Preparing);
    let verifying = edulibra_run(RunStatus::Verifying);
    let completed = edulibra_run(RunStatus::Completed);
    c.bench_function("gates/every gate of a 33-item run", |b| {
        b.iter(|| {
            let a = blockers(black_box(&preparing), TransitionAction::Advance);
            let c = blockers(black_box(&verifying), TransitionAction::Complete);
            let d = blockers(black_box(&completed), TransitionAction::Close);
            a.len() + c.len() + d.len()
        })
    });
    c.bench_function("gates/available transitions (run view)", |b| {
        b.iter(|| available_transitions(black_box(&preparing)))
    });
}

fn template(c: &mut Criterion) {
    let parsed = markdown::parse(EDULIBRA_TEMPLATE_MD).expect("parses");
    c.bench_function("markdown/parse EduLibra", |b| {
        b.iter(|| markdown::parse(black_box(EDULIBRA_TEMPLATE_MD)))
    });
    c.bench_function("markdown/render EduLibra", |b| {
        b.iter(|| markdown::render(black_box(&parsed)))
    });
}

criterion_group!(benches, gates, template);
criterion_main!(benches);
