//! The flow's step graph as an inline SVG for the default card: a layered drawing
//! (Sugiyama-style, top to bottom) computed from the IR, with the card's step
//! highlighted.
//!
//! Layers come from the longest path from the entry step over the graph without its
//! back edges (a switch that loops back makes a cycle); the steps of a layer are put in
//! source order and then in the order of their parents' average position, which
//! removes most crossings of branch-and-join flows. Back edges are drawn as dashed
//! curves on the right. Every name and label is XML-escaped; coordinates are integers,
//! so the same flow always gives the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write;

use flowc_ir::{Flow, Transition};
use handlebars::html_escape as escape;

const NODE_WIDTH: i64 = 168;
const NODE_HEIGHT: i64 = 40;
const GAP_X: i64 = 36;
const GAP_Y: i64 = 56;
const MARGIN: i64 = 16;
/// Room on the right for back edges.
const BACK_EDGE_ROOM: i64 = 56;
/// Characters of a step name shown in its box (the whole name is in its tooltip).
const NAME_CHARS: usize = 20;
/// Characters of an edge label.
const LABEL_CHARS: usize = 24;

/// One edge of the step graph.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Edge {
    from: usize,
    to: usize,
    /// `foreach items`, a switch case's value, or nothing.
    label: Option<String>,
}

/// Draws `flow`'s steps and transitions; `current` names the step to highlight.
pub fn graph_svg(flow: &Flow, current: Option<&str>) -> String {
    let names: Vec<&str> = flow.steps.iter().map(|step| step.name.as_str()).collect();
    if names.is_empty() {
        return String::new();
    }
    let index: BTreeMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let edges = edges(flow, &index);
    let start = index.get(flow.start_step.as_str()).copied().unwrap_or(0);
    let (order, back) = order_without_back_edges(names.len(), &edges, start);
    let layer = layers(names.len(), &edges, &back, &order);
    let rows = arrange(&layer, &edges, &back);

    let widest = rows.iter().map(Vec::len).max().unwrap_or(1) as i64;
    let has_back = !back.is_empty();
    let content_width = widest * NODE_WIDTH + (widest - 1) * GAP_X;
    let width = 2 * MARGIN + content_width + if has_back { BACK_EDGE_ROOM } else { 0 };
    let height = 2 * MARGIN + rows.len() as i64 * NODE_HEIGHT + (rows.len() as i64 - 1) * GAP_Y;
    let mut position = vec![(0i64, 0i64); names.len()];
    for (row_index, row) in rows.iter().enumerate() {
        let row_width = row.len() as i64 * NODE_WIDTH + (row.len() as i64 - 1) * GAP_X;
        let left = MARGIN + (content_width - row_width) / 2;
        for (slot, node) in row.iter().enumerate() {
            if let Some(place) = position.get_mut(*node) {
                *place = (
                    left + slot as i64 * (NODE_WIDTH + GAP_X),
                    MARGIN + row_index as i64 * (NODE_HEIGHT + GAP_Y),
                );
            }
        }
    }

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"flow-graph\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"step graph of {}\">",
        escape(&flow.name)
    );
    svg.push_str(
        "<defs><marker id=\"flow-arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#64748b\"/></marker></defs>\n",
    );
    for (edge_index, edge) in edges.iter().enumerate() {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (position.get(edge.from), position.get(edge.to))
        else {
            continue;
        };
        let is_back = back.contains(&edge_index);
        let (path, label_at) = if is_back {
            let right = MARGIN + content_width + BACK_EDGE_ROOM - 8;
            let (sx, sy) = (x1 + NODE_WIDTH, y1 + NODE_HEIGHT / 2 + 6);
            let (ex, ey) = (x2 + NODE_WIDTH, y2 + NODE_HEIGHT / 2 - 6);
            (
                format!("M{sx},{sy} C{right},{sy} {right},{ey} {ex},{ey}"),
                (right - 4, (sy + ey) / 2),
            )
        } else {
            let (sx, sy) = (x1 + NODE_WIDTH / 2, y1 + NODE_HEIGHT);
            let (ex, ey) = (x2 + NODE_WIDTH / 2, y2);
            let bend = (ey - sy) / 2;
            (
                format!(
                    "M{sx},{sy} C{sx},{} {ex},{} {ex},{ey}",
                    sy + bend,
                    ey - bend
                ),
                ((sx + ex) / 2, (sy + ey) / 2),
            )
        };
        let dash = if is_back {
            " stroke-dasharray=\"5 4\""
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            "<path class=\"edge\" d=\"{path}\" fill=\"none\" stroke=\"#64748b\" stroke-width=\"1.5\"{dash} marker-end=\"url(#flow-arrow)\"/>"
        );
        if let Some(label) = &edge.label {
            let _ = writeln!(
                svg,
                "<text class=\"edge-label\" x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#475569\" text-anchor=\"middle\" \
                 paint-order=\"stroke\" stroke=\"#ffffff\" stroke-width=\"3\">{}</text>",
                label_at.0,
                label_at.1 + 4,
                escape(&shorten(label, LABEL_CHARS))
            );
        }
    }
    for (node, name) in names.iter().enumerate() {
        let Some(&(x, y)) = position.get(node) else {
            continue;
        };
        let is_current = current == Some(*name);
        let (class, fill, stroke) = if is_current {
            ("step current", "#fde68a", "#b45309")
        } else {
            ("step", "#eef2ff", "#4f46e5")
        };
        let _ = writeln!(
            svg,
            "<g class=\"{class}\"><title>{}</title><rect x=\"{x}\" y=\"{y}\" width=\"{NODE_WIDTH}\" height=\"{NODE_HEIGHT}\" \
             rx=\"6\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{}\"/><text x=\"{}\" y=\"{}\" font-size=\"13\" \
             text-anchor=\"middle\" fill=\"#1e293b\">{}</text></g>",
            escape(name),
            if is_current { 2.5 } else { 1.5 },
            x + NODE_WIDTH / 2,
            y + NODE_HEIGHT / 2 + 4,
            escape(&shorten(name, NAME_CHARS))
        );
    }
    svg.push_str("</svg>");
    svg
}

fn edges(flow: &Flow, index: &BTreeMap<&str, usize>) -> Vec<Edge> {
    let mut out = Vec::new();
    for (from, step) in flow.steps.iter().enumerate() {
        let mut add = |to: &str, label: Option<String>| {
            // A target the checks already reported as unknown has no box to point at.
            if let Some(&to) = index.get(to) {
                out.push(Edge { from, to, label });
            }
        };
        match &step.transition {
            Transition::End => {}
            Transition::Linear { to } => add(&to.step, None),
            Transition::Branch { to } => {
                for target in to {
                    add(&target.step, None);
                }
            }
            Transition::Foreach { to, over, .. } => add(&to.step, Some(format!("foreach {over}"))),
            Transition::Switch { cases, .. } => {
                for case in cases {
                    add(&case.target.step, Some(case.value.clone()));
                }
            }
        }
    }
    out
}

/// A topological order of the graph without its back edges, and the indices (into
/// `edges`) of those back edges: the edges a depth-first search from `start` (then
/// from every unvisited step, in source order) finds closing a cycle.
fn order_without_back_edges(
    count: usize,
    edges: &[Edge],
    start: usize,
) -> (Vec<usize>, Vec<usize>) {
    let mut outgoing: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (i, edge) in edges.iter().enumerate() {
        if let Some(list) = outgoing.get_mut(edge.from) {
            list.push(i);
        }
    }
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut state = vec![0u8; count];
    let mut post = Vec::with_capacity(count);
    let mut back = Vec::new();
    let roots = std::iter::once(start).chain(0..count);
    for root in roots {
        if state.get(root) != Some(&0) {
            continue;
        }
        // Iterative, so a long chain of steps cannot overflow the stack.
        let mut stack = vec![(root, 0usize)];
        if let Some(s) = state.get_mut(root) {
            *s = 1;
        }
        while let Some((node, next)) = stack.pop() {
            let out = outgoing.get(node).map(Vec::as_slice).unwrap_or_default();
            if let Some(&edge_index) = out.get(next) {
                stack.push((node, next + 1));
                let to = edges.get(edge_index).map_or(node, |e| e.to);
                match state.get(to) {
                    Some(0) => {
                        if let Some(s) = state.get_mut(to) {
                            *s = 1;
                        }
                        stack.push((to, 0));
                    }
                    Some(1) => back.push(edge_index),
                    _ => {}
                }
            } else {
                if let Some(s) = state.get_mut(node) {
                    *s = 2;
                }
                post.push(node);
            }
        }
    }
    post.reverse();
    back.sort_unstable();
    (post, back)
}

/// Each step's layer: one more than its deepest parent over forward edges.
fn layers(count: usize, edges: &[Edge], back: &[usize], order: &[usize]) -> Vec<usize> {
    let mut layer = vec![0usize; count];
    let mut rank = vec![0usize; count];
    for (position, node) in order.iter().enumerate() {
        if let Some(r) = rank.get_mut(*node) {
            *r = position;
        }
    }
    let mut forward: Vec<&Edge> = edges
        .iter()
        .enumerate()
        .filter(|(i, _)| !back.contains(i))
        .map(|(_, e)| e)
        .collect();
    forward.sort_by_key(|edge| rank.get(edge.from).copied().unwrap_or(0));
    for edge in forward {
        let next = layer.get(edge.from).copied().unwrap_or(0) + 1;
        if let Some(l) = layer.get_mut(edge.to) {
            *l = (*l).max(next);
        }
    }
    layer
}

/// The steps of each layer, left to right: source order, then one top-down pass that
/// sorts each layer by the mean slot of the step's parents in the layers above.
fn arrange(layer: &[usize], edges: &[Edge], back: &[usize]) -> Vec<Vec<usize>> {
    let depth = layer.iter().copied().max().unwrap_or(0) + 1;
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for (node, l) in layer.iter().enumerate() {
        if let Some(row) = rows.get_mut(*l) {
            row.push(node);
        }
    }
    let mut slot = vec![0f64; layer.len()];
    for row_index in 0..rows.len() {
        let Some(row) = rows.get_mut(row_index) else {
            continue;
        };
        let mut keyed: Vec<(f64, usize, usize)> = row
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let parents: Vec<f64> = edges
                    .iter()
                    .enumerate()
                    .filter(|(e, edge)| edge.to == *node && !back.contains(e))
                    .filter_map(|(_, edge)| slot.get(edge.from).copied())
                    .collect();
                let key = if parents.is_empty() {
                    i as f64
                } else {
                    parents.iter().sum::<f64>() / parents.len() as f64
                };
                (key, i, *node)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        *row = keyed.iter().map(|(_, _, node)| *node).collect();
        // Slots are centred, so a single child sits under the middle of its parents.
        let offset = (row.len() as f64 - 1.0) / 2.0;
        for (i, node) in row.iter().enumerate() {
            if let Some(s) = slot.get_mut(*node) {
                *s = i as f64 - offset;
            }
        }
    }
    rows
}

fn shorten(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(limit.saturating_sub(1)).collect();
    out.push('\u{2026}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(from: usize, to: usize) -> Edge {
        Edge {
            from,
            to,
            label: None,
        }
    }

    #[test]
    fn branch_and_join_get_three_layers_and_a_loop_has_one_back_edge() {
        // start -> a, b -> join -> start (a loop back).
        let edges = vec![edge(0, 1), edge(0, 2), edge(1, 3), edge(2, 3), edge(3, 0)];
        let (order, back) = order_without_back_edges(4, &edges, 0);
        assert_eq!(back, vec![4]);
        assert_eq!(order.first(), Some(&0));
        let layer = layers(4, &edges, &back, &order);
        assert_eq!(layer, vec![0, 1, 1, 2]);
        let rows = arrange(&layer, &edges, &back);
        assert_eq!(rows, vec![vec![0], vec![1, 2], vec![3]]);
    }

    #[test]
    fn a_long_chain_does_not_overflow() {
        let count = 100_000;
        let edges: Vec<Edge> = (0..count - 1).map(|i| edge(i, i + 1)).collect();
        let (order, back) = order_without_back_edges(count, &edges, 0);
        assert!(back.is_empty());
        let layer = layers(count, &edges, &back, &order);
        assert_eq!(layer.last(), Some(&(count - 1)));
    }

    #[test]
    fn names_are_shortened_on_char_boundaries() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("ééééééé", 4), "ééé\u{2026}");
    }
}
