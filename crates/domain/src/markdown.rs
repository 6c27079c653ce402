//! The Markdown form of a checklist template: [`parse`] imports a document, [`render`] exports
//! a [`Template`] in canonical form, and `parse(&render(&t)) == Ok(t)` for every template.
//!
//! A template document is plain Markdown that reads well anywhere Markdown renders. What plain
//! Markdown cannot say (when an item must be done, who does it, the decision points) lives in
//! `<!-- shipshape … -->` HTML comments at the end of a line, which renderers hide:
//!
//! ```markdown
//! # Deployment Checklist for EduLibra <!-- shipshape name="EduLibra production deployment" -->
//!
//! ## Overview
//! Free text before the checklist.
//!
//! ## Pre-Deployment Checklist
//!
//! ### 1. Release Preparation
//! - [ ] Final testing of the release candidate is complete. <!-- shipshape gate=deploy -->
//!   Optional guidance, indented by two spaces,
//!   over as many lines as needed.
//! - [ ] Migration scripts are approved. <!-- shipshape gate=deploy kind=approval role=approver -->
//!
//! ## Decision Points <!-- shipshape decision-points -->
//!
//! ### Go/No-Go <!-- shipshape key=go_no_go stage=preparing -->
//! - No sev-1 incident open
//!
//! ## Conclusion
//!
//! Free text after the checklist.
//! ```
//!
//! The document is read line by line:
//!
//! - The first non-blank line is the title, `# title`; there is exactly one. Its annotation may
//!   give the template's listed name (`name="…"`); without it the name is the title.
//! - Each `## heading` starts a block that runs to the next `##`. A block whose heading carries
//!   the `decision-points` annotation holds the decision points. Otherwise a block that contains
//!   a `### heading` is a *part* of the checklist, and any other block is free text: before the
//!   first part it belongs to the preamble, after the parts to the epilogue. Free text is kept
//!   as written, without its leading and trailing blank lines (blank lines become empty).
//! - In a part, each `### heading` starts a section, and each `- [ ] text` line (also `- [x]`,
//!   `* [ ]`; the box's state is ignored) is an item of the current section. Lines right after
//!   an item that are indented by at least two spaces are the item's guidance (two spaces of
//!   indentation are removed; blank lines between them are kept).
//! - An item's annotation may hold `gate=deploy|verify|complete|close` (default `complete`:
//!   the stage transition the item must be finished before), `applies=always|after_rollback|after_success`
//!   (default `always`; `after_success`: not for a run that rolled back or was aborted), `kind=manual|approval` (default `manual`),
//!   `approvers=ROLE,ROLE,…` (approval items: one distinct signer per listed role; default
//!   one `approver`), `role=admin|release_manager|engineer|approver|viewer` (default none) and the flag
//!   `optional` (default: the item is required), and `evidence=required` (the item is done
//!   only with an evidence link, or a passing check), and `record=issues|retrospective|contacts` (the
//!   item is kept through the run's issues log, which it links to, or its retrospective,
//!   whose publication completes it: a manual item of gate `close`).
//! - A probe item (`kind=probe`) declares its check in the same annotation: `url=…` (required;
//!   absolute http(s) or starting with `{base_url}`, the base URL an administrator sets for the
//!   run's environment; `{environment}`, `{product}` and `{version}` are the run's fields),
//!   `method=GET|HEAD` (default GET), `status=200` (the expected status, default 200),
//!   `latency=800ms` (the slowest passing answer), `ttl=15m` (how long a passing result
//!   counts, default 15m), `every=5m` (how often it is repeated while the run is in the stage
//!   the item gates, default half the ttl), `pointer=/status` (a JSON Pointer into the
//!   answer), and `equals=ok` or `matches="regular expression"` (the value at the pointer, or
//!   the whole answer; quote a value with spaces, which must then come last). An invalid
//!   check is an error naming the line. An `optional` probe is advisory: it shows its result
//!   and never gates.
//! - In the decision points block, each `### title <!-- shipshape key=… stage=… -->` is a
//!   decision point (`key` and `stage=preparing|deploying|verifying` are required;
//!   `deadline=30m` gives the time after the stage begins by which it must be decided, and
//!   `default=hold|rollback|abort` what the server records when it passes, `hold` unless
//!   given), and each `- text` line under it is one of its criteria. A criterion a probe item
//!   measures says which: `- p95 latency below 800 ms <!-- shipshape probe=3.1.2 -->` (the
//!   item's part.section.item reference). A criterion the checklist answers names what it
//!   counts: `gate=deploy` (every applicable item of that gate) and/or `items=1.1.4,1.3.2`;
//!   it is met once every item it counts is done or waived.
//! - The order is: title, preamble, parts, decision points, epilogue. Blank lines between
//!   structures do not matter. Anything else (text under a part outside an item, an item
//!   before the first section, a second title, an unknown annotation key, another HTML
//!   comment, …) is an error naming the line; nothing is silently dropped.
//!
//! An annotation is `<!-- shipshape` followed by space-separated `key=value` pairs and flags,
//! then `-->`, and must end its line. A value with spaces is quoted, `key="a value"`; a quoted
//! value runs to the *last* `"` of the annotation, so it may itself contain `"` but must be
//! the annotation's last entry. Nothing is escaped: template text can never contain `<!--`,
//! `-->` or line breaks, so an annotation is always unambiguous.
//!
//! Input may use CRLF line endings and start with a UTF-8 byte order mark. The result passes
//! the same validation as any [`TemplateDraft`]; its errors name the offending line as their
//! path (`line 12`). That includes the size limits (`crate::template::MAX_ITEMS` and its
//! neighbours): at most 500 items, 100 per section, 50 sections per part, 20 parts, 20
//! decision points of 20 criteria, 50 text blocks before and after the checklist.

use crate::Role;
use crate::decision::Outcome;
use crate::probe::{self, ProbeMethod, ProbeSpec};
use crate::template::{
    Applicability, CriterionProbe, DecisionPointSpec, DecisionStage, Gate, ItemKind, ItemSpec,
    ItemsCriterion, Part, ProseBlock, RecordKind, Section, Template, TemplateDraft, TemplateError,
    check_text,
};

/// The heading [`render`] gives the decision points block (any heading text is accepted).
const DECISION_POINTS_HEADING: &str = "Decision Points";

/// The valid values of a decision point's `stage`, for error messages.
const STAGES_EXPECTED: &str = "preparing, deploying or verifying";
/// The gates an annotation may name.
const GATES_EXPECTED: &str = "deploy, verify, complete or close";

/// Reads a template from its Markdown form (see the [module documentation](self)).
pub fn parse(md: &str) -> Result<Template, TemplateError> {
    let md = md.strip_prefix('\u{feff}').unwrap_or(md);
    let lines: Vec<Line<'_>> = md
        .lines()
        .enumerate()
        .map(|(i, text)| Line {
            number: i + 1,
            text,
        })
        .collect();
    Parser::default().parse(&lines)
}

/// Writes a template in canonical Markdown form (see the [module documentation](self)).
///
/// Every item's annotation names its gate, then only what differs from the defaults; the
/// output ends with exactly one newline.
pub fn render(t: &Template) -> String {
    let mut out = String::new();
    out.push_str("# ");
    out.push_str(t.title());
    if t.name() != t.title() {
        out.push_str(&format!(" <!-- shipshape name=\"{}\" -->", t.name()));
    }
    out.push_str("\n\n");
    for block in t.preamble() {
        out.push_str(&format!("## {}\n{}\n\n", block.heading, block.body));
    }
    for part in t.parts() {
        out.push_str(&format!("## {}\n\n", part.title));
        for section in &part.sections {
            out.push_str(&format!("### {}\n", section.title));
            for item in &section.items {
                render_item(&mut out, item);
            }
            out.push('\n');
        }
    }
    if !t.decision_points().is_empty() {
        out.push_str(&format!(
            "## {DECISION_POINTS_HEADING} <!-- shipshape decision-points -->\n\n"
        ));
        for dp in t.decision_points() {
            let mut note = format!("key={} stage={}", dp.key, dp.stage.as_str());
            if let Some(d) = dp.deadline_secs {
                note.push_str(&format!(" deadline={}", probe::format_duration(d)));
            }
            if let Some(o) = dp.default_outcome {
                note.push_str(&format!(" default={}", o.as_str()));
            }
            out.push_str(&format!("### {} <!-- shipshape {note} -->\n", dp.title));
            for criterion in &dp.criteria {
                let mut note = String::new();
                if let Some(reference) = dp.probe_for(criterion) {
                    note.push_str(&format!(" probe={reference}"));
                }
                if let Some(counted) = dp.items_for(criterion) {
                    if let Some(gate) = counted.gate {
                        note.push_str(&format!(" gate={}", gate.as_str()));
                    }
                    if !counted.items.is_empty() {
                        note.push_str(&format!(" items={}", counted.items.join(",")));
                    }
                }
                if note.is_empty() {
                    out.push_str(&format!("- {criterion}\n"));
                } else {
                    out.push_str(&format!("- {criterion} <!-- shipshape{note} -->\n"));
                }
            }
            out.push('\n');
        }
    }
    for block in t.epilogue() {
        out.push_str(&format!("## {}\n\n{}\n\n", block.heading, block.body));
    }
    let end = out.trim_end_matches('\n').len();
    out.truncate(end);
    out.push('\n');
    out
}

fn render_item(out: &mut String, item: &ItemSpec) {
    let mut note = format!("gate={}", item.gate.as_str());
    if item.applies != Applicability::default() {
        note.push_str(&format!(" applies={}", item.applies.as_str()));
    }
    if item.kind != ItemKind::default() {
        note.push_str(&format!(" kind={}", item.kind.as_str()));
    }
    if !item.approvers.is_empty() {
        let roles: Vec<&str> = item.approvers.iter().map(|r| r.as_str()).collect();
        note.push_str(&format!(" approvers={}", roles.join(",")));
    }
    if let Some(role) = item.role {
        note.push_str(&format!(" role={}", role.as_str()));
    }
    if !item.required {
        note.push_str(" optional");
    }
    if item.evidence_required {
        note.push_str(" evidence=required");
    }
    if let Some(r) = item.record {
        note.push_str(&format!(" record={}", r.as_str()));
    }
    if let Some(p) = &item.probe {
        render_probe(&mut note, p);
    }
    out.push_str(&format!("- [ ] {} <!-- shipshape {note} -->\n", item.title));
    if let Some(guidance) = &item.guidance {
        for line in guidance.lines() {
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str(&format!("  {line}\n"));
            }
        }
    }
}

/// A probe's check as annotation entries; the one value that may need quotes (`equals` or
/// `matches`, never both) comes last.
fn render_probe(note: &mut String, p: &ProbeSpec) {
    if p.method != ProbeMethod::default() {
        note.push_str(&format!(" method={}", p.method.as_str()));
    }
    note.push_str(&format!(" url={}", p.url));
    if p.status != probe::DEFAULT_STATUS {
        note.push_str(&format!(" status={}", p.status));
    }
    if let Some(l) = p.max_latency_ms {
        note.push_str(&format!(" latency={}", probe::format_latency(l)));
    }
    if p.ttl_secs != probe::DEFAULT_TTL_SECS {
        note.push_str(&format!(" ttl={}", probe::format_duration(p.ttl_secs)));
    }
    if let Some(e) = p.every_secs {
        note.push_str(&format!(" every={}", probe::format_duration(e)));
    }
    if let Some(pointer) = &p.pointer {
        note.push_str(&format!(" pointer={pointer}"));
    }
    for (key, value) in [("equals", &p.equals), ("matches", &p.matches)] {
        if let Some(v) = value {
            if v.is_empty() || v.contains(|c: char| c.is_whitespace() || c == '"') {
                note.push_str(&format!(" {key}=\"{v}\""));
            } else {
                note.push_str(&format!(" {key}={v}"));
            }
        }
    }
}

/// One input line and its 1-based number.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    number: usize,
    text: &'a str,
}

/// An error located at a line.
fn at(line: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        path: format!("line {line}"),
        message: message.into(),
    }
}

fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

/// A heading's level and text: `## Title` is `(2, "Title")`. `#tag` is not a heading.
fn heading(text: &str) -> Option<(usize, &str)> {
    let level = text.chars().take_while(|&c| c == '#').count();
    let rest = &text[level..];
    let is_heading =
        (1..=6).contains(&level) && (rest.is_empty() || rest.starts_with(char::is_whitespace));
    is_heading.then(|| (level, rest.trim()))
}

/// The text of a checklist item line (`- [ ] text`, `- [x] text`, `* [ ] text`).
fn item_text(text: &str) -> Option<&str> {
    let rest = text
        .strip_prefix("- ")
        .or_else(|| text.strip_prefix("* "))?;
    let rest = ["[ ]", "[x]", "[X]"]
        .into_iter()
        .find_map(|checkbox| rest.strip_prefix(checkbox))?;
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then_some(rest)
}

/// The text of a decision point criterion line (`- text` or `* text`).
fn criterion_text(text: &str) -> Option<&str> {
    text.strip_prefix("- ")
        .or_else(|| text.strip_prefix("* "))
        .or_else(|| (text == "-" || text == "*").then_some(""))
}

/// The `key=value` pairs and flags of a line's `<!-- shipshape … -->` annotation.
#[derive(Debug)]
struct Annotation<'a> {
    line: usize,
    entries: Vec<(&'a str, Option<&'a str>)>,
}

/// Splits a line's text from its trailing annotation (an empty one if there is none).
fn split_annotation(line: usize, text: &str) -> Result<(&str, Annotation<'_>), TemplateError> {
    let Some(open) = text.find("<!--") else {
        return Ok((
            text.trim(),
            Annotation {
                line,
                entries: Vec::new(),
            },
        ));
    };
    let (before, comment) = text.split_at(open);
    let Some(inner) = comment
        .trim_end()
        .strip_prefix("<!--")
        .and_then(|c| c.strip_suffix("-->"))
    else {
        return Err(at(
            line,
            "an annotation `<!-- shipshape … -->` must end the line",
        ));
    };
    if inner.contains("<!--") || inner.contains("-->") {
        return Err(at(line, "a line may carry only one annotation, at its end"));
    }
    let Some(body) = inner
        .trim_start()
        .strip_prefix("shipshape")
        .filter(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
    else {
        return Err(at(
            line,
            "only `<!-- shipshape … -->` annotations are understood; remove other HTML comments",
        ));
    };
    let entries = annotation_entries(line, body)?;
    Ok((before.trim(), Annotation { line, entries }))
}

/// Splits an annotation's body into `key=value`, `key="quoted value"` and `flag` entries.
fn annotation_entries(line: usize, body: &str) -> Result<Vec<(&str, Option<&str>)>, TemplateError> {
    let mut entries: Vec<(&str, Option<&str>)> = Vec::new();
    let mut rest = body.trim();
    while !rest.is_empty() {
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        if key.is_empty() {
            return Err(at(line, "annotation: expected a key before `=`"));
        }
        rest = &rest[key_end..];
        let value = match rest.strip_prefix('=') {
            None => None,
            Some(after) => {
                if let Some(quoted) = after.strip_prefix('"') {
                    let Some(close) = quoted.rfind('"') else {
                        return Err(at(line, format!("annotation: `{key}=\"` is never closed")));
                    };
                    if !quoted[close + 1..].trim().is_empty() {
                        return Err(at(
                            line,
                            format!(
                                "annotation: `{key}` has a quoted value, which runs to the \
                                 last `\"`, so it must be the annotation's last entry"
                            ),
                        ));
                    }
                    rest = "";
                    Some(&quoted[..close])
                } else {
                    let end = after.find(char::is_whitespace).unwrap_or(after.len());
                    let value = &after[..end];
                    if value.is_empty() {
                        return Err(at(line, format!("annotation: `{key}=` needs a value")));
                    }
                    if value.contains('"') {
                        return Err(at(
                            line,
                            format!("annotation: `{key}={value}` has a stray `\"`"),
                        ));
                    }
                    rest = &after[end..];
                    Some(value)
                }
            }
        };
        if entries.iter().any(|(k, _)| *k == key) {
            return Err(at(line, format!("annotation: `{key}` is given twice")));
        }
        entries.push((key, value));
        rest = rest.trim_start();
    }
    Ok(entries)
}

impl<'a> Annotation<'a> {
    /// Takes the value of `key`, if given.
    fn value(&mut self, key: &str) -> Result<Option<&'a str>, TemplateError> {
        let Some(i) = self.entries.iter().position(|(k, _)| *k == key) else {
            return Ok(None);
        };
        match self.entries.remove(i) {
            (_, Some(value)) => Ok(Some(value)),
            (_, None) => Err(at(
                self.line,
                format!("annotation: `{key}` needs a value (`{key}=…`)"),
            )),
        }
    }

    /// Takes the value of `key` and reads it with `parse`; `expected` lists the valid values.
    fn parsed<T>(
        &mut self,
        key: &str,
        parse: fn(&str) -> Option<T>,
        expected: &str,
    ) -> Result<Option<T>, TemplateError> {
        let Some(value) = self.value(key)? else {
            return Ok(None);
        };
        match parse(value) {
            Some(parsed) => Ok(Some(parsed)),
            None => Err(at(
                self.line,
                format!("annotation: `{key}={value}` is not valid; {key} must be {expected}"),
            )),
        }
    }

    /// Takes the flag `key`: whether it is given.
    fn flag(&mut self, key: &str) -> Result<bool, TemplateError> {
        let Some(i) = self.entries.iter().position(|(k, _)| *k == key) else {
            return Ok(false);
        };
        match self.entries.remove(i) {
            (_, None) => Ok(true),
            (_, Some(_)) => Err(at(
                self.line,
                format!("annotation: `{key}` is a flag and takes no value"),
            )),
        }
    }

    /// Fails on any entry not taken: it is unknown on `what`, which allows `allowed`.
    fn finish(self, what: &str, allowed: &str) -> Result<(), TemplateError> {
        match self.entries.first() {
            None => Ok(()),
            Some((key, _)) if allowed.is_empty() => Err(at(
                self.line,
                format!("annotation: unknown key `{key}`; {what} takes no annotation"),
            )),
            Some((key, _)) => Err(at(
                self.line,
                format!("annotation: unknown key `{key}` on {what} (allowed: {allowed})"),
            )),
        }
    }
}

/// A `##` heading and the lines up to the next one.
#[derive(Debug)]
struct Block<'a> {
    heading: Line<'a>,
    text: &'a str,
    body: &'a [Line<'a>],
}

/// Where the document is, as far as the order of its blocks goes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    #[default]
    Preamble,
    Parts,
    DecisionPoints,
    Epilogue,
}

#[derive(Debug, Default)]
struct Parser {
    preamble: Vec<ProseBlock>,
    parts: Vec<Part>,
    decision_points: Vec<DecisionPointSpec>,
    epilogue: Vec<ProseBlock>,
    phase: Phase,
    /// The line of the decision points heading, once seen.
    decision_points_line: Option<usize>,
    /// The line of each field of the draft, by its validation path (`parts[0].title`…), so a
    /// validation error can name the line.
    lines_by_path: Vec<(String, usize)>,
}

impl Parser {
    fn parse(mut self, lines: &[Line<'_>]) -> Result<Template, TemplateError> {
        let Some(start) = lines.iter().position(|l| !is_blank(l.text)) else {
            return Err(at(
                1,
                "the document is empty; it must start with a `# title` line",
            ));
        };
        let title_line = lines[start];
        let Some((1, heading_text)) = heading(title_line.text) else {
            return Err(at(
                title_line.number,
                "the document must start with its title, a `# title` line",
            ));
        };
        let (title, mut note) = split_annotation(title_line.number, heading_text)?;
        let name = note.value("name")?.unwrap_or(title);
        note.finish("the title", "name")?;
        self.locate("name", title_line.number);
        self.locate("title", title_line.number);

        for block in blocks(title_line, &lines[start + 1..])? {
            self.block(&block)?;
        }
        if self.parts.is_empty() {
            return Err(at(
                title_line.number,
                "the document has no checklist: it needs a `## part` with `### section` \
                 headings and `- [ ] item` lines",
            ));
        }

        let draft = TemplateDraft {
            name: name.to_owned(),
            title: Some(title.to_owned()),
            preamble: self.preamble,
            parts: self.parts,
            decision_points: self.decision_points,
            epilogue: self.epilogue,
        };
        Template::try_from(draft).map_err(|e| locate_error(&self.lines_by_path, e))
    }

    fn locate(&mut self, path: impl Into<String>, line: usize) {
        self.lines_by_path.push((path.into(), line));
    }

    /// Reads a `##` block: the decision points, a part or free text, by its annotation and
    /// whether it has `###` sections.
    fn block(&mut self, block: &Block<'_>) -> Result<(), TemplateError> {
        let (text, mut note) = split_annotation(block.heading.number, block.text)?;
        let is_decision_points = note.flag("decision-points")?;
        note.finish("a `##` heading", "decision-points")?;
        let has_sections = block
            .body
            .iter()
            .any(|l| matches!(heading(l.text), Some((3, _))));
        if is_decision_points {
            self.decision_points(block)
        } else if has_sections {
            self.part(text, block)
        } else {
            self.prose(text, block)
        }
    }

    fn prose(&mut self, heading: &str, block: &Block<'_>) -> Result<(), TemplateError> {
        let is_preamble = self.phase == Phase::Preamble;
        if !is_preamble {
            self.phase = Phase::Epilogue;
        }
        let stray_item = block
            .body
            .iter()
            .find(|l| l.text.starts_with("- [") && item_text(l.text).is_some());
        if let Some(item) = stray_item {
            return Err(at(
                item.number,
                format!(
                    "a checklist item must be under a `### section` heading (`## {heading}` \
                     has none, so it is read as text)"
                ),
            ));
        }
        let Some((body, body_line)) = text_block(block.body, "")? else {
            return Err(at(
                block.heading.number,
                "a text block needs some text (or `###` sections and items, to be a part)",
            ));
        };
        let path = if is_preamble {
            format!("preamble[{}]", self.preamble.len())
        } else {
            format!("epilogue[{}]", self.epilogue.len())
        };
        self.locate(format!("{path}.body"), body_line);
        self.locate(path, block.heading.number);
        let prose = ProseBlock {
            heading: heading.to_owned(),
            body,
        };
        if is_preamble {
            self.preamble.push(prose);
        } else {
            self.epilogue.push(prose);
        }
        Ok(())
    }

    fn part(&mut self, title: &str, block: &Block<'_>) -> Result<(), TemplateError> {
        match self.phase {
            Phase::Preamble | Phase::Parts => self.phase = Phase::Parts,
            Phase::DecisionPoints => {
                return Err(at(
                    block.heading.number,
                    "checklist parts must come before the decision points block",
                ));
            }
            Phase::Epilogue => {
                return Err(at(
                    block.heading.number,
                    "checklist parts must come before the closing text blocks (a `##` block \
                     without `###` sections after a part is closing text)",
                ));
            }
        }
        let pi = self.parts.len();
        self.locate(format!("parts[{pi}]"), block.heading.number);
        let mut sections: Vec<Section> = Vec::new();
        let body = block.body;
        let mut i = 0;
        while i < body.len() {
            let line = body[i];
            i += 1;
            if is_blank(line.text) {
                continue;
            }
            if let Some((level, text)) = heading(line.text) {
                if level != 3 {
                    return Err(at(
                        line.number,
                        "only `###` section headings may appear inside a part",
                    ));
                }
                let (title, note) = split_annotation(line.number, text)?;
                note.finish("a section heading", "")?;
                self.locate(
                    format!("parts[{pi}].sections[{}]", sections.len()),
                    line.number,
                );
                sections.push(Section {
                    title: title.to_owned(),
                    items: Vec::new(),
                });
            } else if let Some(text) = item_text(line.text) {
                let si = sections.len().saturating_sub(1);
                let Some(section) = sections.last_mut() else {
                    return Err(at(
                        line.number,
                        "a checklist item must be under a `### section` heading",
                    ));
                };
                let path = format!("parts[{pi}].sections[{si}].items[{}]", section.items.len());
                let mut item = parse_item(line, text)?;
                self.locate(path.clone(), line.number);
                let used = guidance_length(&body[i..]);
                if let Some((guidance, guidance_line)) = text_block(&body[i..i + used], "  ")? {
                    self.locate(format!("{path}.guidance"), guidance_line);
                    item.guidance = Some(guidance);
                }
                i += used;
                section.items.push(item);
            } else if line.text.starts_with(char::is_whitespace) {
                return Err(at(
                    line.number,
                    "unexpected indented text: an item's guidance follows the item, indented \
                     by at least two spaces",
                ));
            } else {
                return Err(at(
                    line.number,
                    "unexpected text in a part: expected a `### section` heading or a `- [ ] item` \
                     line (with guidance indented by two spaces)",
                ));
            }
        }
        self.parts.push(Part {
            title: title.to_owned(),
            sections,
        });
        Ok(())
    }

    fn decision_points(&mut self, block: &Block<'_>) -> Result<(), TemplateError> {
        let heading_line = block.heading.number;
        match (self.phase, self.decision_points_line) {
            (Phase::Parts, _) => {}
            (Phase::Preamble, _) => {
                return Err(at(
                    heading_line,
                    "the decision points block must come after the checklist parts",
                ));
            }
            (_, Some(first)) => {
                return Err(at(
                    heading_line,
                    format!(
                        "there may be only one decision points block (the first is on line \
                         {first})"
                    ),
                ));
            }
            (_, None) => {
                return Err(at(
                    heading_line,
                    "the decision points block must come before the closing text blocks",
                ));
            }
        }
        self.phase = Phase::DecisionPoints;
        self.decision_points_line = Some(heading_line);
        for line in block.body {
            if is_blank(line.text) {
                continue;
            }
            if let Some((level, text)) = heading(line.text) {
                if level != 3 {
                    return Err(at(
                        line.number,
                        "only `###` decision point headings may appear in the decision points \
                         block",
                    ));
                }
                let (title, mut note) = split_annotation(line.number, text)?;
                let Some(key) = note.value("key")? else {
                    return Err(at(
                        line.number,
                        "a decision point needs a key: `<!-- shipshape key=… stage=… -->`",
                    ));
                };
                let Some(stage) = note.parsed("stage", DecisionStage::parse, STAGES_EXPECTED)?
                else {
                    return Err(at(
                        line.number,
                        format!("a decision point needs `stage=…` ({STAGES_EXPECTED})"),
                    ));
                };
                let deadline_secs = note.parsed(
                    "deadline",
                    probe::parse_duration,
                    "a time such as 30m or 2h",
                )?;
                let default_outcome =
                    note.parsed("default", Outcome::parse, "hold, rollback or abort")?;
                note.finish("a decision point", "key, stage, deadline, default")?;
                self.locate(
                    format!("decision_points[{}]", self.decision_points.len()),
                    line.number,
                );
                self.decision_points.push(DecisionPointSpec {
                    key: key.to_owned(),
                    title: title.to_owned(),
                    stage,
                    criteria: Vec::new(),
                    probes: Vec::new(),
                    item_criteria: Vec::new(),
                    deadline_secs,
                    default_outcome,
                });
            } else if let Some(text) = criterion_text(line.text) {
                let di = self.decision_points.len().saturating_sub(1);
                let Some(point) = self.decision_points.last_mut() else {
                    return Err(at(
                        line.number,
                        "a criterion must be under a `###` decision point heading",
                    ));
                };
                let path = format!("decision_points[{di}].criteria[{}]", point.criteria.len());
                let (text, mut note) = split_annotation(line.number, text)?;
                let mut located = vec![(path, line.number)];
                if let Some(reference) = note.value("probe")? {
                    located.push((
                        format!("decision_points[{di}].probes[{}]", point.probes.len()),
                        line.number,
                    ));
                    point.probes.push(CriterionProbe {
                        criterion: text.to_owned(),
                        reference: reference.to_owned(),
                    });
                }
                let gate = note.parsed("gate", Gate::parse, GATES_EXPECTED)?;
                let items: Vec<String> = note
                    .value("items")?
                    .map(|v| v.split(',').map(|r| r.trim().to_owned()).collect())
                    .unwrap_or_default();
                if gate.is_some() || !items.is_empty() {
                    located.push((
                        format!(
                            "decision_points[{di}].item_criteria[{}]",
                            point.item_criteria.len()
                        ),
                        line.number,
                    ));
                    point.item_criteria.push(ItemsCriterion {
                        criterion: text.to_owned(),
                        gate,
                        items,
                    });
                }
                note.finish("a criterion", "probe, gate, items")?;
                point.criteria.push(text.to_owned());
                for (path, number) in located {
                    self.locate(path, number);
                }
            } else {
                return Err(at(
                    line.number,
                    "unexpected text among the decision points: expected `### title \
                     <!-- shipshape key=… stage=… -->` or a `- criterion` line",
                ));
            }
        }
        if self.decision_points.is_empty() {
            return Err(at(
                heading_line,
                "the decision points block has no `###` decision point",
            ));
        }
        Ok(())
    }
}

/// Cuts the lines after the title into `##` blocks.
fn blocks<'a>(title: Line<'a>, lines: &'a [Line<'a>]) -> Result<Vec<Block<'a>>, TemplateError> {
    let mut starts = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match heading(line.text) {
            Some((1, _)) => {
                return Err(at(
                    line.number,
                    format!(
                        "a document has one `# ` title (it is on line {}); use `##` or `###` \
                         for other headings",
                        title.number
                    ),
                ));
            }
            Some((2, _)) => starts.push(i),
            _ if starts.is_empty() && !is_blank(line.text) => {
                return Err(at(
                    line.number,
                    "only blank lines may come between the title and the first `##` heading",
                ));
            }
            _ => {}
        }
    }
    let mut blocks = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(lines.len());
        let heading_line = lines[start];
        let text = heading(heading_line.text).map_or("", |(_, text)| text);
        blocks.push(Block {
            heading: heading_line,
            text,
            body: &lines[start + 1..end],
        });
    }
    Ok(blocks)
}

/// Reads an item line's text and annotation (its guidance comes later).
fn parse_item(line: Line<'_>, text: &str) -> Result<ItemSpec, TemplateError> {
    let (title, mut note) = split_annotation(line.number, text)?;
    let gate = note
        .parsed("gate", Gate::parse, GATES_EXPECTED)?
        .unwrap_or(Gate::Complete);
    let applies = note
        .parsed(
            "applies",
            Applicability::parse,
            "always, after_rollback or after_success",
        )?
        .unwrap_or_default();
    let kind = note
        .parsed("kind", ItemKind::parse, "manual, approval or probe")?
        .unwrap_or_default();
    let approvers = note
        .parsed(
            "approvers",
            parse_roles,
            "a comma-separated list of roles, e.g. release_manager,approver",
        )?
        .unwrap_or_default();
    let role = note.parsed(
        "role",
        Role::parse,
        "admin, release_manager, engineer, approver or viewer",
    )?;
    let optional = note.flag("optional")?;
    let evidence_required = note
        .parsed(
            "evidence",
            |v| (v == "required").then_some(true),
            "required",
        )?
        .unwrap_or(false);
    let record = note.parsed(
        "record",
        RecordKind::parse,
        "issues, retrospective or contacts",
    )?;
    let probe = parse_probe(&mut note)?;
    if probe.is_some() && kind != ItemKind::Probe {
        return Err(at(
            line.number,
            "a check (url=…) is declared on probe items only: add kind=probe",
        ));
    }
    if let Some(p) = &probe
        && let Err(message) = p.check()
    {
        return Err(at(line.number, message));
    }
    note.finish(
        "an item",
        "gate, applies, kind, approvers, role, optional, evidence, record, and for probes url, \
         method, status, pointer, equals, matches, latency, ttl, every",
    )?;
    Ok(ItemSpec {
        title: title.to_owned(),
        guidance: None,
        gate,
        applies,
        required: !optional,
        kind,
        role,
        approvers,
        probe,
        evidence_required,
        record,
    })
}

/// Reads a probe item's check from its annotation: `None` when it names no `url` (and no
/// other probe key).
fn parse_probe(note: &mut Annotation<'_>) -> Result<Option<ProbeSpec>, TemplateError> {
    let url = note.value("url")?;
    let method = note.parsed("method", ProbeMethod::parse, "GET or HEAD")?;
    let status = note.parsed(
        "status",
        |v| v.parse::<u16>().ok(),
        "an HTTP status, e.g. 200",
    )?;
    let pointer = note.value("pointer")?;
    let equals = note.value("equals")?;
    let matches = note.value("matches")?;
    let latency = note.parsed(
        "latency",
        probe::parse_latency,
        "a time such as 800ms or 2s",
    )?;
    let ttl = note.parsed(
        "ttl",
        probe::parse_duration,
        "a time such as 30s, 15m or 2h",
    )?;
    let every = note.parsed(
        "every",
        probe::parse_duration,
        "a time such as 30s, 5m or 1h",
    )?;
    let Some(url) = url else {
        let given = method.is_some()
            || status.is_some()
            || pointer.is_some()
            || equals.is_some()
            || matches.is_some()
            || latency.is_some()
            || ttl.is_some()
            || every.is_some();
        return if given {
            Err(at(note.line, "a probe's check needs its url=…"))
        } else {
            Ok(None)
        };
    };
    Ok(Some(ProbeSpec {
        method: method.unwrap_or_default(),
        url: url.to_owned(),
        status: status.unwrap_or(probe::DEFAULT_STATUS),
        pointer: pointer.map(str::to_owned),
        equals: equals.map(str::to_owned),
        matches: matches.map(str::to_owned),
        max_latency_ms: latency,
        ttl_secs: ttl.unwrap_or(probe::DEFAULT_TTL_SECS),
        every_secs: every,
    }))
}

/// `release_manager,approver` → the roles, in order.
fn parse_roles(s: &str) -> Option<Vec<Role>> {
    s.split(',').map(Role::parse).collect()
}

/// How many of `lines` are an item's guidance: lines indented by two spaces, and blank lines
/// between them.
fn guidance_length(lines: &[Line<'_>]) -> usize {
    let mut length = 0;
    for (i, line) in lines.iter().enumerate() {
        if is_blank(line.text) {
            continue;
        }
        if !line.text.starts_with("  ") {
            break;
        }
        length = i + 1;
    }
    length
}

/// Joins lines into multi-line text and the number of its first line, or `None` if they are
/// all blank. Leading and trailing blank lines are dropped, blank lines become empty, and
/// `indent` is removed from the start of every other line.
///
/// Each line is checked on its own so that an error names the offending line.
fn text_block(lines: &[Line<'_>], indent: &str) -> Result<Option<(String, usize)>, TemplateError> {
    let Some(first) = lines.iter().position(|l| !is_blank(l.text)) else {
        return Ok(None);
    };
    let last = lines
        .iter()
        .rposition(|l| !is_blank(l.text))
        .unwrap_or(first);
    let mut text = Vec::new();
    for line in &lines[first..=last] {
        if is_blank(line.text) {
            text.push("");
            continue;
        }
        let content = line.text.strip_prefix(indent).unwrap_or(line.text);
        check_text(&format!("line {}", line.number), content.trim_start())?;
        text.push(content);
    }
    Ok(Some((text.join("\n"), lines[first].number)))
}

/// Re-addresses a validation error of the draft to the line the offending field came from:
/// `parts[0].sections[1].title: must not be empty` becomes
/// `line 9: parts[0].sections[1].title: must not be empty`.
fn locate_error(lines_by_path: &[(String, usize)], e: TemplateError) -> TemplateError {
    let within = |prefix: &str| {
        e.path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    };
    let best = lines_by_path
        .iter()
        .filter(|(path, _)| within(path))
        .max_by_key(|(path, _)| path.len());
    match best {
        Some((_, line)) => at(*line, format!("{}: {}", e.path, e.message)),
        None => e,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn annotation_entries_read_values_flags_and_a_final_quoted_value() {
        let entries = annotation_entries(1, r#" gate=deploy optional name="a "b" c" "#).unwrap();
        assert_eq!(
            entries,
            vec![
                ("gate", Some("deploy")),
                ("optional", None),
                ("name", Some(r#"a "b" c"#)),
            ]
        );
    }

    #[test]
    fn a_quoted_value_must_come_last() {
        let e = annotation_entries(3, r#"name="x" gate=deploy"#).unwrap_err();
        assert_eq!(e.path, "line 3");
    }

    #[test]
    fn headings_need_a_space_after_the_hashes() {
        assert_eq!(heading("## Part"), Some((2, "Part")));
        assert_eq!(heading("#"), Some((1, "")));
        assert_eq!(heading("#tag"), None);
        assert_eq!(heading("####### seven"), None);
    }

    #[test]
    fn item_lines_accept_ticked_boxes_and_stars() {
        assert_eq!(item_text("- [ ] a"), Some(" a"));
        assert_eq!(item_text("- [x] a"), Some(" a"));
        assert_eq!(item_text("* [ ] a"), Some(" a"));
        assert_eq!(item_text("- [ ]"), Some(""));
        assert_eq!(item_text("- []"), None);
        assert_eq!(item_text("- [ ]a"), None);
        assert_eq!(item_text("- plain"), None);
    }

    #[test]
    fn guidance_stops_at_the_first_unindented_line_and_leaves_trailing_blanks() {
        let lines: Vec<Line<'_>> = ["  a", "", "  b", "", "- [ ] next"]
            .into_iter()
            .enumerate()
            .map(|(i, text)| Line {
                number: i + 1,
                text,
            })
            .collect();
        assert_eq!(guidance_length(&lines), 3);
    }

    #[test]
    fn validation_errors_name_the_longest_matching_path() {
        let lines = vec![("parts[1]".to_owned(), 7), ("parts[10]".to_owned(), 70)];
        let e = locate_error(
            &lines,
            TemplateError {
                path: "parts[1].title".into(),
                message: "must not be empty".into(),
            },
        );
        assert_eq!(e.path, "line 7");
        assert_eq!(e.message, "parts[1].title: must not be empty");
    }
}
