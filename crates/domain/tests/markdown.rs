//! The Markdown template format: the customer's checklist imports verbatim, the built-in
//! template is canonical and follows the design's gate table, every template survives a
//! render/parse round trip, and malformed documents fail with the offending line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use shipshape_domain::EDULIBRA_TEMPLATE_MD;
use shipshape_domain::Role;
use shipshape_domain::decision::Outcome;
use shipshape_domain::markdown::{parse, render};
use shipshape_domain::probe::{ProbeMethod, ProbeSpec};
use shipshape_domain::template::{
    Applicability, DecisionPointSpec, DecisionStage, Gate, ItemKind, ItemSpec, Part, ProseBlock,
    RecordKind, Section, Template, TemplateDraft, TemplateError,
};

const SEED: &str = include_str!("../templates/edulibra-deployment-checklist.seed.md");

/// The seed's lines that start with `prefix`, without it.
fn seed_lines(prefix: &str) -> Vec<&'static str> {
    SEED.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .collect()
}

/// The built-in template without its annotations and its decision points block.
fn strip_annotations(md: &str) -> String {
    let mut out = Vec::new();
    let mut in_decision_points = false;
    for line in md.lines() {
        if line.starts_with("## ") {
            in_decision_points = line.contains("<!-- shipshape decision-points -->");
        }
        if in_decision_points {
            continue;
        }
        let text = match line.find(" <!-- shipshape") {
            Some(i) => &line[..i],
            None => line,
        };
        out.push(text);
    }
    out.join("\n") + "\n"
}

/// Part titles with their sections' titles with their items' titles.
type Shape = Vec<(String, Vec<(String, Vec<String>)>)>;

/// A section (part index, section index) and the gate and applicability of each of its items.
type SectionGates = (usize, usize, &'static [(Gate, Applicability)]);

fn built_in() -> Template {
    parse(EDULIBRA_TEMPLATE_MD).unwrap()
}

// --- The customer's checklist -------------------------------------------------------------

#[test]
fn the_seed_imports_with_every_item_verbatim() {
    let t = parse(SEED).unwrap();

    assert_eq!(t.title(), "Deployment Checklist for EduLibra");
    assert_eq!(t.name(), t.title());
    let item_titles: Vec<&str> = t.items().map(|(_, _, _, it)| it.title.as_str()).collect();
    assert_eq!(item_titles, seed_lines("- [ ] "));
    assert_eq!(t.item_count(), 33);

    let section_titles: Vec<&str> = t
        .parts()
        .iter()
        .flat_map(|p| p.sections.iter().map(|s| s.title.as_str()))
        .collect();
    assert_eq!(section_titles, seed_lines("### "));
    let sections_per_part: Vec<usize> = t.parts().iter().map(|p| p.sections.len()).collect();
    assert_eq!(sections_per_part, [3, 3, 4, 3]);

    let part_titles: Vec<&str> = t.parts().iter().map(|p| p.title.as_str()).collect();
    assert_eq!(
        part_titles,
        [
            "Pre-Deployment Checklist",
            "Deployment Checklist",
            "Post-Deployment Checklist",
            "Contingency Checklist",
        ]
    );
    assert!(t.decision_points().is_empty());
}

#[test]
fn the_seed_keeps_overview_and_conclusion_as_text_without_surrounding_blank_lines() {
    let t = parse(SEED).unwrap();
    let overview = seed_lines("This document provides")[0];
    let conclusion = seed_lines("This deployment checklist")[0];

    assert_eq!(
        t.preamble(),
        [ProseBlock {
            heading: "Overview".into(),
            body: format!("This document provides{overview}"),
        }]
    );
    assert_eq!(
        t.epilogue(),
        [ProseBlock {
            heading: "Conclusion".into(),
            body: format!("This deployment checklist{conclusion}"),
        }]
    );
}

#[test]
fn seed_items_without_annotations_get_the_defaults() {
    let t = parse(SEED).unwrap();
    for (_, _, _, item) in t.items() {
        assert_eq!(item.gate, Gate::Complete);
        assert_eq!(item.applies, Applicability::Always);
        assert_eq!(item.kind, ItemKind::Manual);
        assert!(item.required);
        assert_eq!(item.role, None);
        assert_eq!(item.guidance, None);
    }
}

#[test]
fn crlf_line_endings_and_a_byte_order_mark_are_accepted() {
    let windows = format!("\u{feff}{}", SEED.replace('\n', "\r\n"));
    assert_eq!(parse(&windows).unwrap(), parse(SEED).unwrap());
}

// --- The built-in template ----------------------------------------------------------------

#[test]
fn the_built_in_template_is_in_canonical_form() {
    assert_eq!(render(&built_in()), EDULIBRA_TEMPLATE_MD);
}

#[test]
fn the_built_in_template_is_named_and_titled_as_the_customer_expects() {
    let t = built_in();
    assert_eq!(t.name(), "EduLibra production deployment");
    assert_eq!(t.title(), "Deployment Checklist for EduLibra");
}

#[test]
fn the_built_in_template_stripped_of_annotations_is_the_seed() {
    let stripped = strip_annotations(EDULIBRA_TEMPLATE_MD);
    assert_eq!(stripped, SEED);

    let (stripped, seed, annotated) = (parse(&stripped).unwrap(), parse(SEED).unwrap(), built_in());
    assert_eq!(stripped, seed);
    assert_eq!(annotated.title(), seed.title());
    assert_eq!(annotated.preamble(), seed.preamble());
    assert_eq!(annotated.epilogue(), seed.epilogue());
    let shape = |t: &Template| -> Shape {
        t.parts()
            .iter()
            .map(|p| {
                let sections = p.sections.iter().map(|s| {
                    let items = s.items.iter().map(|i| i.title.clone()).collect();
                    (s.title.clone(), items)
                });
                (p.title.clone(), sections.collect())
            })
            .collect()
    };
    assert_eq!(shape(&annotated), shape(&seed));
}

#[test]
fn the_built_in_template_gates_follow_the_design_table() {
    use Applicability::{AfterRollback, AfterSuccess, Always};
    use Gate::{Close, Complete, Deploy, Verify};
    let t = built_in();
    // (part, section) → the gate and applicability of each of its items, per DESIGN §1.
    let expected: [SectionGates; 13] = [
        (0, 0, &[(Deploy, Always); 4]),
        (0, 1, &[(Deploy, Always); 3]),
        (0, 2, &[(Deploy, Always); 3]),
        (1, 0, &[(Deploy, Always); 2]),
        (
            1,
            1,
            &[(Deploy, Always), (Deploy, Always), (Verify, Always)],
        ),
        (1, 2, &[(Verify, Always); 2]),
        (2, 0, &[(Complete, Always); 3]),
        (2, 1, &[(Complete, Always); 2]),
        (2, 2, &[(Close, AfterSuccess); 2]),
        (2, 3, &[(Close, Always); 3]),
        (3, 0, &[(Deploy, Always); 2]),
        (3, 1, &[(Deploy, Always); 2]),
        (3, 2, &[(Close, AfterRollback); 2]),
    ];
    for (pi, si, gates) in expected {
        let section = &t.parts()[pi].sections[si];
        let actual: Vec<(Gate, Applicability)> =
            section.items.iter().map(|i| (i.gate, i.applies)).collect();
        assert_eq!(actual, gates, "{}", section.title);
    }

    let count = |gate: Gate, applies: Applicability| {
        t.items()
            .filter(|(_, _, _, i)| i.gate == gate && i.applies == applies)
            .count()
    };
    assert_eq!(count(Deploy, Always), 18);
    assert_eq!(count(Verify, Always), 3);
    assert_eq!(count(Complete, Always), 5);
    assert_eq!(count(Close, Always), 3);
    assert_eq!(count(Close, AfterSuccess), 2);
    assert_eq!(count(Close, AfterRollback), 2);
    assert_eq!(t.item_count(), 33);
}

#[test]
fn the_built_in_template_asks_approvers_to_approve_the_migration_and_the_plan() {
    let t = built_in();
    let approvals: Vec<(&str, Vec<Role>)> = t
        .items()
        .filter(|(_, _, _, i)| i.kind == ItemKind::Approval)
        .map(|(_, _, _, i)| (i.title.as_str(), i.approval_policy()))
        .collect();
    assert_eq!(
        approvals,
        [
            (
                "Data migration scripts and procedures are reviewed and approved.",
                vec![Role::Approver]
            ),
            (
                "Detailed deployment plan, including rollback procedures and contingency plans, \
                 is documented and approved.",
                vec![Role::ReleaseManager, Role::Approver]
            ),
        ]
    );
}

#[test]
fn the_built_in_template_has_a_decision_point_for_each_stage() {
    let t = built_in();
    let points: Vec<(&str, &str, DecisionStage, usize)> = t
        .decision_points()
        .iter()
        .map(|d| (d.key.as_str(), d.title.as_str(), d.stage, d.criteria.len()))
        .collect();
    assert_eq!(
        points,
        [
            ("go_no_go", "Go/No-Go", DecisionStage::Preparing, 4),
            (
                "deployment_checkpoint",
                "Deployment checkpoint",
                DecisionStage::Deploying,
                3
            ),
            (
                "post_deployment_verification",
                "Post-deployment verification",
                DecisionStage::Verifying,
                4
            ),
        ]
    );
    let checkpoint = t.decision_point("deployment_checkpoint").unwrap();
    assert_eq!(
        checkpoint.criteria,
        [
            "Error rate below 1% for 10 minutes",
            "p95 latency below 800 ms",
            "No sev-1 issue open"
        ]
    );
}

// --- Details of the format ----------------------------------------------------------------

const SMALL: &str = "# Small\n\n## Part\n\n### Section\n";

#[test]
fn render_names_the_gate_and_then_only_what_differs_from_the_defaults() {
    let md = format!(
        "{SMALL}- [ ] a\n\
         - [ ] b <!-- shipshape optional role=engineer kind=approval applies=after_rollback gate=close -->\n"
    );
    assert_eq!(
        render(&parse(&md).unwrap()),
        format!(
            "{SMALL}- [ ] a <!-- shipshape gate=complete -->\n\
             - [ ] b <!-- shipshape gate=close applies=after_rollback kind=approval role=engineer optional -->\n"
        )
    );
}

#[test]
fn ticked_boxes_and_star_bullets_are_items_too() {
    let md = format!("{SMALL}- [x] a\n* [ ] b\n* [X] c\n");
    let titles: Vec<String> = parse(&md)
        .unwrap()
        .items()
        .map(|(_, _, _, i)| i.title.clone())
        .collect();
    assert_eq!(titles, ["a", "b", "c"]);
}

#[test]
fn guidance_keeps_its_inner_blank_lines_and_extra_indentation() {
    let md = format!("{SMALL}- [ ] a\n  first\n\n    indented\n  last\n\n- [ ] b\n");
    let t = parse(&md).unwrap();
    let items: Vec<&ItemSpec> = t.items().map(|(_, _, _, i)| i).collect();
    assert_eq!(
        items[0].guidance.as_deref(),
        Some("first\n\n  indented\nlast")
    );
    assert_eq!(items[1].guidance, None);
    assert_eq!(parse(&render(&t)).unwrap(), t);
}

#[test]
fn a_name_with_quotes_and_spaces_round_trips() {
    let md = "# Title <!-- shipshape name=\"The \"big\" one\" -->\n\n## P\n\n### S\n- [ ] a\n";
    let t = parse(md).unwrap();
    assert_eq!(t.name(), "The \"big\" one");
    assert_eq!(
        render(&t),
        md.replace("- [ ] a", "- [ ] a <!-- shipshape gate=complete -->")
    );
    assert_eq!(parse(&render(&t)).unwrap(), t);
}

#[test]
fn a_name_equal_to_the_title_is_not_annotated() {
    let md = "# Same <!-- shipshape name=Same -->\n\n## P\n\n### S\n- [ ] a\n";
    assert!(render(&parse(md).unwrap()).starts_with("# Same\n\n"));
}

#[test]
fn text_blocks_before_and_after_the_parts_are_preamble_and_epilogue() {
    let md = "# T\n\n## Intro\n\none\n  two\n\nthree\n\n## P\n\n### S\n- [ ] a\n\n## Outro\nbye\n";
    let t = parse(md).unwrap();
    assert_eq!(
        t.preamble(),
        [ProseBlock {
            heading: "Intro".into(),
            body: "one\n  two\n\nthree".into()
        }]
    );
    assert_eq!(
        t.epilogue(),
        [ProseBlock {
            heading: "Outro".into(),
            body: "bye".into()
        }]
    );
}

// --- Errors name the line -----------------------------------------------------------------

/// Parses `md`, expecting an error on `line`; returns the message.
fn error_on_line(md: &str, line: usize) -> String {
    let e: TemplateError = parse(md).expect_err("the document should be refused");
    assert_eq!(e.path, format!("line {line}"), "{e}");
    e.message
}

#[test]
fn an_unknown_annotation_key_is_refused() {
    let md = format!("{SMALL}- [ ] a <!-- shipshape gate=deploy owner=ops -->\n");
    let message = error_on_line(&md, 6);
    assert!(message.contains("unknown key `owner`"), "{message}");
}

#[test]
fn a_bad_gate_value_is_refused() {
    let md = format!("{SMALL}- [ ] a\n- [ ] b <!-- shipshape gate=later -->\n");
    let message = error_on_line(&md, 7);
    assert!(message.contains("gate=later"), "{message}");
}

#[test]
fn bad_values_of_the_other_item_keys_are_refused() {
    for note in [
        "applies=sometimes",
        "kind=probe",
        "role=boss",
        "optional=yes",
        "gate",
        "gate=deploy gate=verify",
    ] {
        let md = format!("{SMALL}- [ ] a <!-- shipshape {note} -->\n");
        error_on_line(&md, 6);
    }
}

#[test]
fn an_item_outside_a_section_is_refused() {
    error_on_line("# T\n\n## P\n- [ ] early\n\n### S\n- [ ] a\n", 4);
}

#[test]
fn items_under_a_heading_without_sections_are_refused() {
    let message = error_on_line("# T\n\n## P\n\n### S\n- [ ] a\n\n## Q\n- [ ] lost\n", 9);
    assert!(message.contains("`## Q` has none"), "{message}");
}

#[test]
fn text_directly_under_a_part_is_refused() {
    error_on_line("# T\n\n## P\nSome words.\n\n### S\n- [ ] a\n", 4);
    error_on_line("# T\n\n## P\n\n### S\n- [ ] a\nloose words\n", 7);
}

#[test]
fn a_decision_point_without_a_key_is_refused() {
    let md = format!(
        "{SMALL}- [ ] a\n\n## Decision Points <!-- shipshape decision-points -->\n\n\
         ### Go <!-- shipshape stage=preparing -->\n- ok\n"
    );
    let message = error_on_line(&md, 10);
    assert!(message.contains("key"), "{message}");
}

#[test]
fn a_decision_point_without_a_stage_or_with_a_duplicate_key_is_refused() {
    let head = format!("{SMALL}- [ ] a\n\n## Decision Points <!-- shipshape decision-points -->\n");
    error_on_line(&format!("{head}### Go <!-- shipshape key=go -->\n"), 9);
    error_on_line(
        &format!(
            "{head}### Go <!-- shipshape key=go stage=preparing -->\n\
             ### Again <!-- shipshape key=go stage=deploying -->\n"
        ),
        10,
    );
    error_on_line(
        &format!("{head}### Go <!-- shipshape key=Go! stage=preparing -->\n"),
        9,
    );
    error_on_line(&format!("{head}- orphan criterion\n"), 9);
}

#[test]
fn an_empty_document_is_refused() {
    error_on_line("", 1);
    error_on_line("\n\n  \n", 1);
    error_on_line("\u{feff}", 1);
}

#[test]
fn a_second_title_is_refused() {
    let md = format!("{SMALL}- [ ] a\n\n# Another title\n");
    let message = error_on_line(&md, 8);
    assert!(message.contains("line 1"), "{message}");
}

#[test]
fn a_document_must_start_with_its_title() {
    error_on_line("\nSome words\n# T\n", 2);
    error_on_line("# T\nwords under the title\n## P\n\n### S\n- [ ] a\n", 2);
}

#[test]
fn a_document_without_a_part_is_refused() {
    error_on_line("# T\n\n## Overview\nJust text.\n", 1);
}

#[test]
fn a_section_without_items_is_refused_at_its_heading() {
    let message = error_on_line("# T\n\n## P\n\n### Empty\n\n### S\n- [ ] a\n", 5);
    assert!(message.contains("at least one item"), "{message}");
}

#[test]
fn an_empty_item_title_is_refused_at_its_line() {
    error_on_line(
        &format!("{SMALL}- [ ] a\n- [ ] <!-- shipshape gate=deploy -->\n"),
        7,
    );
}

#[test]
fn a_bad_guidance_line_is_refused_at_its_own_line() {
    let md = format!("{SMALL}- [ ] a\n  fine\n  # a heading in guidance\n");
    error_on_line(&md, 8);
}

#[test]
fn other_html_comments_and_misplaced_annotations_are_refused() {
    error_on_line(&format!("{SMALL}- [ ] a <!-- a note -->\n"), 6);
    error_on_line(
        &format!("{SMALL}- [ ] a <!-- shipshape gate=deploy --> more\n"),
        6,
    );
    error_on_line(
        "# T\n\n## P\n\n### S <!-- shipshape gate=deploy -->\n- [ ] a\n",
        5,
    );
    error_on_line(
        "# T <!-- shipshape title=x -->\n\n## P\n\n### S\n- [ ] a\n",
        1,
    );
}

#[test]
fn blocks_out_of_order_are_refused() {
    let dp = "## D <!-- shipshape decision-points -->\n### Go <!-- shipshape key=go stage=preparing -->\n";
    let part = "## P\n### S\n- [ ] a\n";
    // Decision points before the parts.
    error_on_line(&format!("# T\n{dp}{part}"), 2);
    // A part after the decision points, or after closing text.
    error_on_line(&format!("# T\n{part}{dp}{part}"), 7);
    error_on_line(&format!("# T\n{part}## End\nbye\n{part}"), 7);
    // Two decision point blocks.
    error_on_line(&format!("# T\n{part}{dp}{dp}"), 7);
}

#[test]
fn headings_deeper_than_sections_are_refused() {
    error_on_line(&format!("{SMALL}- [ ] a\n#### Detail\n"), 7);
}

// --- Round trip ---------------------------------------------------------------------------

/// One line of text: starts with a letter or digit, ends with no space, and holds spaces,
/// punctuation, quotes and non-ASCII letters in between.
fn line() -> impl Strategy<Value = String> {
    "[A-Za-z0-9éÅßøжλ]([A-Za-z0-9éÅßøжλ .,()/%:'\"-]{0,24}[A-Za-z0-9éÅßøжλ.)%])?"
}

/// Multi-line text: lines, some indented, some separated by a blank line.
fn text() -> impl Strategy<Value = String> {
    (line(), prop::collection::vec((line(), 0..3u8), 0..4)).prop_map(|(first, rest)| {
        let mut lines = vec![first];
        for (l, shape) in rest {
            match shape {
                0 => lines.push(l),
                1 => lines.push(format!("  {l}")),
                _ => {
                    lines.push(String::new());
                    lines.push(l);
                }
            }
        }
        lines.join("\n")
    })
}

fn prose() -> impl Strategy<Value = ProseBlock> {
    (line(), text()).prop_map(|(heading, body)| ProseBlock { heading, body })
}

fn item() -> impl Strategy<Value = ItemSpec> {
    (
        line(),
        prop::option::of(text()),
        prop::sample::select(Gate::ALL.to_vec()),
        prop::sample::select(vec![
            Applicability::Always,
            Applicability::AfterRollback,
            Applicability::AfterSuccess,
        ]),
        any::<bool>(),
        prop::sample::select(vec![ItemKind::Manual, ItemKind::Approval, ItemKind::Probe]),
        prop::option::of(prop::sample::select(Role::ALL.to_vec())),
        prop::collection::vec(
            prop::sample::select(vec![Role::Approver, Role::ReleaseManager, Role::Admin]),
            0..3,
        ),
        (probe(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                title,
                guidance,
                gate,
                applies,
                required,
                kind,
                role,
                approvers,
                (probe, ev, rec),
            )| {
                ItemSpec {
                    title,
                    guidance,
                    gate,
                    applies,
                    required,
                    kind,
                    role,
                    approvers: if kind == ItemKind::Approval {
                        approvers
                    } else {
                        Vec::new()
                    },
                    probe: (kind == ItemKind::Probe).then_some(probe),
                    evidence_required: ev && kind != ItemKind::Approval,
                    record: match (rec, kind, gate) {
                        (true, ItemKind::Manual, Gate::Close) => Some(RecordKind::Retrospective),
                        (true, _, _) => Some(RecordKind::Issues),
                        (false, _, _) => None,
                    },
                }
            },
        )
}

/// Valid checks, with every optional key present or not, and values that need quotes.
fn probe() -> impl Strategy<Value = ProbeSpec> {
    (
        prop::sample::select(vec![
            "{base_url}/healthz",
            "https://edu.example/v/{version}?env={environment}",
            "http://127.0.0.1:8080/{product}",
        ]),
        prop::sample::select(vec![200_u16, 204, 503]),
        prop::option::of(prop::sample::select(vec![100_u32, 800, 2000])),
        prop::sample::select(vec![60_u32, 900, 7200]),
        any::<bool>(),
        prop::sample::select(vec![0_u8, 1, 2, 3]),
        prop::sample::select(vec!["ok", "all \"good\" now", "", "{version}"]),
    )
        .prop_map(|(url, status, latency, ttl, every, body, value)| {
            let mut p = ProbeSpec::get(url);
            p.status = status;
            p.max_latency_ms = latency;
            p.ttl_secs = ttl;
            p.every_secs = every.then_some(ttl / 2);
            match body {
                1 => p.pointer = Some("/status".into()),
                2 => {
                    p.pointer = Some("/a/0".into());
                    p.equals = Some(value.into());
                }
                3 => p.matches = Some(format!("^{}$", value.replace(['"', '{', '}'], ""))),
                _ => p.method = ProbeMethod::Head,
            }
            p
        })
}

fn part() -> impl Strategy<Value = Part> {
    let section = (line(), prop::collection::vec(item(), 1..4))
        .prop_map(|(title, items)| Section { title, items });
    (line(), prop::collection::vec(section, 1..4))
        .prop_map(|(title, sections)| Part { title, sections })
}

fn decision_points() -> impl Strategy<Value = Vec<DecisionPointSpec>> {
    let point = (
        "[a-z0-9_-]{1,12}",
        line(),
        prop::sample::select(vec![
            DecisionStage::Preparing,
            DecisionStage::Deploying,
            DecisionStage::Verifying,
        ]),
        prop::collection::vec(line(), 0..4),
        prop::option::of(prop::sample::select(vec![60_u32, 1800, 7200])),
        any::<bool>(),
    );
    prop::collection::vec(point, 0..4).prop_map(|points| {
        points
            .into_iter()
            .enumerate()
            .map(
                |(i, (key, title, stage, criteria, deadline, explicit))| DecisionPointSpec {
                    // Keys are unique within a template.
                    key: format!("{i}{key}"),
                    title,
                    stage,
                    criteria,
                    probes: Vec::new(),
                    item_criteria: Vec::new(),
                    deadline_secs: deadline,
                    default_outcome: (deadline.is_some() && explicit).then_some(match stage {
                        DecisionStage::Preparing => Outcome::Abort,
                        DecisionStage::Deploying | DecisionStage::Verifying => Outcome::Rollback,
                    }),
                },
            )
            .collect()
    })
}

fn template() -> impl Strategy<Value = Template> {
    (
        line(),
        prop::option::of(line()),
        prop::collection::vec(prose(), 0..3),
        prop::collection::vec(part(), 1..4),
        decision_points(),
        prop::collection::vec(prose(), 0..3),
    )
        .prop_map(
            |(title, name, preamble, parts, decision_points, epilogue)| {
                let draft = TemplateDraft {
                    name: name.unwrap_or_else(|| title.clone()),
                    title: Some(title),
                    preamble,
                    parts,
                    decision_points,
                    epilogue,
                };
                Template::try_from(draft).expect("the generator makes valid templates")
            },
        )
}

proptest! {
    #[test]
    fn every_template_survives_render_then_parse(t in template()) {
        let md = render(&t);
        prop_assert_eq!(parse(&md), Ok(t), "{}", md);
    }

    #[test]
    fn rendering_a_parsed_rendering_changes_nothing(t in template()) {
        let md = render(&t);
        prop_assert_eq!(render(&parse(&md).unwrap()), md);
    }
}

#[test]
fn a_template_over_the_size_limits_is_refused_with_the_limit_it_broke() {
    let items = |n: usize| "- [ ] an item\n".repeat(n);
    let sections = |per: usize, count: usize| {
        (1..=count)
            .map(|i| format!("### {i}. Section\n\n{}\n", items(per)))
            .collect::<String>()
    };
    // 6 sections of 100 items: each section is within its limit, the whole is not.
    let md = format!("# Big\n\n## Part\n\n{}", sections(100, 6));
    let err = parse(&md).expect_err("600 items are too many");
    assert!(
        err.to_string()
            .contains("at most 500 items in a template (this template has 600)"),
        "{err}"
    );
    let md = format!("# Big\n\n## Part\n\n{}", sections(101, 1));
    let err = parse(&md).expect_err("101 items in one section are too many");
    assert!(
        err.to_string().contains("at most 100 items in a section"),
        "{err}"
    );
    // At the limit it imports.
    let md = format!("# Big\n\n## Part\n\n{}", sections(100, 5));
    assert_eq!(parse(&md).expect("500 items are fine").item_count(), 500);
}

/// A small template with a probe item, a criterion it measures and a decision deadline.
const PROBED: &str = "# Probed

## Checks

### 1. Health
- [ ] The service answers. <!-- shipshape gate=deploy kind=probe url={base_url}/healthz latency=800ms ttl=10m pointer=/status equals=ok -->
- [ ] Backup restored. <!-- shipshape gate=deploy evidence=required -->

## Decision Points <!-- shipshape decision-points -->

### Go/No-Go <!-- shipshape key=go_no_go stage=preparing deadline=30m -->
- Service healthy <!-- shipshape probe=1.1.1 -->
- Team ready
";

#[test]
fn probe_items_criteria_and_deadlines_read_and_round_trip() {
    let t = parse(PROBED).unwrap();
    let (_, _, _, item) = t.items().next().unwrap();
    assert_eq!(item.kind, ItemKind::Probe);
    let probe = item.probe.as_ref().unwrap();
    assert_eq!(probe.url, "{base_url}/healthz");
    assert_eq!(probe.max_latency_ms, Some(800));
    assert_eq!(probe.ttl_secs, 600);
    assert_eq!(probe.pointer.as_deref(), Some("/status"));
    assert_eq!(probe.equals.as_deref(), Some("ok"));
    let (_, _, _, backup) = t.items().nth(1).unwrap();
    assert!(backup.evidence_required);
    let point = &t.decision_points()[0];
    assert_eq!(point.deadline_secs, Some(1800));
    assert_eq!(point.deadline_outcome(), Outcome::Hold);
    assert_eq!(point.probe_for("Service healthy"), Some("1.1.1"));
    assert_eq!(point.probe_for("Team ready"), None);
    assert_eq!(point.criteria, vec!["Service healthy", "Team ready"]);
    assert_eq!(parse(&render(&t)).unwrap(), t);
}

#[test]
fn invalid_checks_deadlines_and_criterion_probes_name_their_line() {
    let cases = [
        (
            PROBED.replace("equals=ok", "matches=\"(unclosed\""),
            "line 6",
            "not a valid regular expression",
        ),
        (
            PROBED.replace("url={base_url}/healthz", "url=ftp://x"),
            "line 6",
            "must start with",
        ),
        (
            PROBED.replace("kind=probe ", ""),
            "line 6",
            "add kind=probe",
        ),
        (PROBED.replace("ttl=10m", "ttl=10x"), "line 6", "ttl"),
        (
            PROBED.replace("url={base_url}/healthz ", ""),
            "line 6",
            "needs its url",
        ),
        (
            PROBED.replace("deadline=30m", "deadline=30m default=go"),
            "line 11",
            "never decides",
        ),
        (
            PROBED.replace("deadline=30m", "deadline=30m default=rollback"),
            "line 11",
            "not an outcome while preparing",
        ),
        (
            PROBED.replace("probe=1.1.1", "probe=1.1.2"),
            "line 12",
            "not the reference",
        ),
        (
            PROBED.replace("deadline=30m", "deadline=10s"),
            "line 11",
            "between 1 minute",
        ),
    ];
    for (md, line, message) in cases {
        let e = parse(&md).unwrap_err();
        assert_eq!(e.path, line, "{e}");
        assert!(e.message.contains(message), "{e}");
    }
}

#[test]
fn criteria_the_checklist_answers_read_validate_and_round_trip() {
    let md = PROBED.replace(
        "- Team ready\n",
        "- Team ready <!-- shipshape gate=deploy -->\n- Backup restorable <!-- shipshape items=1.1.2 -->\n",
    );
    let t = parse(&md).unwrap();
    let point = &t.decision_points()[0];
    let team = point.items_for("Team ready").expect("counted");
    assert_eq!((team.gate, team.items.len()), (Some(Gate::Deploy), 0));
    assert_eq!(team.describe(), "the deploy-gated items");
    let backup = point.items_for("Backup restorable").expect("counted");
    assert_eq!(backup.items, ["1.1.2"]);
    assert_eq!(backup.describe(), "item 1.1.2");
    assert!(point.items_for("Service healthy").is_none(), "a probe's");
    assert_eq!(parse(&render(&t)).unwrap(), t);

    // The built-in Go/No-Go counts the deploy gate, the two backups and the rollback rehearsal.
    let built = built_in();
    let go = built.decision_point("go_no_go").unwrap();
    let described: Vec<(&str, String)> = go
        .item_criteria
        .iter()
        .map(|c| (c.criterion.as_str(), c.describe()))
        .collect();
    assert_eq!(
        described,
        [
            (
                "All deploy-gated checklist items are done or waived",
                "the deploy-gated items".to_owned()
            ),
            (
                "Production backup verified restorable",
                "items 1.1.4, 1.3.2".to_owned()
            ),
            ("Rollback procedure rehearsed", "item 4.1.1".to_owned()),
        ]
    );
    for (reference, words) in [
        ("1.1.4", "Backup of the production environment"),
        ("1.3.2", "Backup of current production data"),
        ("4.1.1", "Rollback procedures and scripts"),
    ] {
        let item = built.item_by_reference(reference).expect(reference);
        assert!(item.title.starts_with(words), "{reference}: {}", item.title);
    }

    for (changed, line, message) in [
        (
            md.replace("items=1.1.2", "items=1.1.9"),
            14,
            "`1.1.9` is not the reference",
        ),
        (
            md.replace("items=1.1.2", "items=1.1.2,1.1.2"),
            14,
            "named twice",
        ),
        (
            md.replace("=deploy -->\n- Backup", "=close -->\n- Backup"),
            13,
            "no item has gate `close`",
        ),
        (
            md.replace("probe=1.1.1", "probe=1.1.1 gate=deploy"),
            12,
            "measured twice",
        ),
        (
            md.replace("=deploy -->\n- Backup", "=soon -->\n- Backup"),
            13,
            "gate must be deploy, verify, complete or close",
        ),
    ] {
        let refused = error_on_line(&changed, line);
        assert!(refused.contains(message), "{refused}");
    }
}
