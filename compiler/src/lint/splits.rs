//! Split/join analysis: which splits are open at every step, and where a join fails to
//! close the split it should. Computed once per `lint::run`; three rules render its
//! findings (`unbalanced_join`, `join_without_inputs`, `inputs_not_join`).
//!
//! Every step reachable from start gets a *context*: the stack of splits (branch or
//! foreach) it runs inside, each with the branch taken. A split pushes one frame per
//! branch, a join pops one, and a switch passes its context through unchanged, because
//! exactly one of its cases runs and the cases may meet again at any step (Metaflow
//! 2.19 does the same). Contexts are interned, so comparing two is comparing two
//! integers, and the walk is one pass over the steps in topological order.
//!
//! A step reached with two different contexts is a merge: at a join it must be the
//! branches of one split, all of them; at any other step the contexts must agree. A
//! finding that involves a split already reported, or a split with a branch that
//! stops early because of an error another rule reports (a missing `self.next`, an
//! unknown target, a cycle, a `@parallel` switch), is dropped: one mistake, one diagnostic.

use std::collections::{HashMap, HashSet};

use flowc_ir::Transition;
use petgraph::graph::NodeIndex;

use super::graph::{is_parallel, EdgeKind, StepGraph};

/// An interned split stack; `ROOT` is the empty one.
type Ctx = usize;
const ROOT: Ctx = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Frame {
    below: Ctx,
    split: NodeIndex,
    branch: NodeIndex,
}

/// One incoming path at a merge: the parent step and the innermost split it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    pub(crate) parent: NodeIndex,
    /// `(split, branch)`, or `None` outside every split.
    pub(crate) frame: Option<(NodeIndex, NodeIndex)>,
}

/// Why a step that takes `inputs` is not a join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotJoin {
    /// No split is open where the step is reached.
    NoSplit,
    /// Only one branch of a split with several leads to it.
    OneBranch { split: NodeIndex, branch: NodeIndex },
    /// It is the end step, which can never be a join.
    End,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    /// The end step is reached while `split` is still open.
    Unclosed { split: NodeIndex, end: NodeIndex },
    /// `join` closes `split` without some of its branches.
    MissingBranches {
        join: NodeIndex,
        split: NodeIndex,
        missing: Vec<NodeIndex>,
    },
    /// `split` is closed by two different joins.
    JoinedTwice {
        split: NodeIndex,
        first: NodeIndex,
        second: NodeIndex,
    },
    /// `step` merges paths that are in different splits.
    Mixed {
        step: NodeIndex,
        is_join: bool,
        parts: Vec<Part>,
    },
    /// Several branches of `split` meet at `step`, which does not take `inputs`.
    JoinWithoutInputs {
        step: NodeIndex,
        split: NodeIndex,
        branches: Vec<NodeIndex>,
    },
    /// `step` takes `inputs` but is not where a split's branches meet.
    InputsNotJoin { step: NodeIndex, reason: NotJoin },
}

#[derive(Debug, Default)]
pub(crate) struct SplitAnalysis {
    pub(crate) findings: Vec<Finding>,
}

impl SplitAnalysis {
    pub(crate) fn run(graph: &StepGraph<'_>) -> Self {
        let Some(start) = graph.start else {
            return SplitAnalysis::default();
        };
        let mut walk = Walk {
            graph,
            frames: vec![Frame {
                below: ROOT,
                split: start,
                branch: start,
            }],
            interned: HashMap::new(),
            ctx: vec![None; graph.graph.node_count()],
            closer: HashMap::new(),
            raw: Vec::new(),
        };
        for &node in &graph.topo {
            walk.visit(node, start);
        }
        let findings = walk.filter();
        SplitAnalysis { findings }
    }
}

struct Walk<'g, 'f> {
    graph: &'g StepGraph<'f>,
    /// `frames[ctx]` is the top frame of `ctx`; `frames[ROOT]` is a placeholder.
    frames: Vec<Frame>,
    interned: HashMap<Frame, Ctx>,
    /// The context each visited step runs in.
    ctx: Vec<Option<Ctx>>,
    /// The join that closed each split, once one has.
    closer: HashMap<NodeIndex, NodeIndex>,
    raw: Vec<Finding>,
}

impl Walk<'_, '_> {
    fn push(&mut self, below: Ctx, split: NodeIndex, branch: NodeIndex) -> Ctx {
        let frame = Frame {
            below,
            split,
            branch,
        };
        if let Some(&ctx) = self.interned.get(&frame) {
            return ctx;
        }
        self.frames.push(frame);
        let ctx = self.frames.len() - 1;
        self.interned.insert(frame, ctx);
        ctx
    }

    fn top(&self, ctx: Ctx) -> Option<Frame> {
        (ctx != ROOT).then(|| self.frames[ctx])
    }

    /// Every split open in `ctx`, innermost first.
    fn open_splits(&self, mut ctx: Ctx) -> Vec<NodeIndex> {
        let mut splits = Vec::new();
        while let Some(frame) = self.top(ctx) {
            splits.push(frame.split);
            ctx = frame.below;
        }
        splits
    }

    /// The context each incoming edge brings to `node`, parents in topological order.
    fn incoming(&self, node: NodeIndex) -> Vec<(NodeIndex, Ctx)> {
        let g = self.graph;
        let mut parts: Vec<(NodeIndex, Ctx)> = Vec::new();
        for e in g.in_edges(node) {
            if !g.is_forward(e) {
                continue;
            }
            let (parent, _) = g.endpoints(e);
            let Some(parent_ctx) = self.ctx.get(parent.index()).copied().flatten() else {
                continue;
            };
            let ctx = if g.edge(e).kind.opens_split() {
                self.interned
                    .get(&Frame {
                        below: parent_ctx,
                        split: parent,
                        branch: node,
                    })
                    .copied()
                    .unwrap_or(ROOT)
            } else {
                parent_ctx
            };
            parts.push((parent, ctx));
        }
        parts.sort_by_key(|&(parent, _)| parent.index());
        parts
    }

    fn visit(&mut self, node: NodeIndex, start: NodeIndex) {
        let g = self.graph;
        let is_join = g.step(node).is_join;
        let ctx = if node == start {
            if is_join {
                self.raw.push(Finding::InputsNotJoin {
                    step: node,
                    reason: NotJoin::NoSplit,
                });
            }
            ROOT
        } else if Some(node) == g.end {
            self.visit_end(node, is_join);
            ROOT
        } else {
            self.merge(node, is_join)
        };
        self.ctx[node.index()] = Some(ctx);
        // Open the frames this step's splits push, so children can look them up.
        for &e in g.out_edges(node) {
            if g.is_forward(e) && g.edge(e).kind.opens_split() {
                let (_, child) = g.endpoints(e);
                self.push(ctx, node, child);
            }
        }
    }

    fn visit_end(&mut self, end: NodeIndex, is_join: bool) {
        let incoming = self.incoming(end);
        if is_join {
            self.raw.push(Finding::InputsNotJoin {
                step: end,
                reason: NotJoin::End,
            });
            return;
        }
        let mut seen = HashSet::new();
        for (_, ctx) in incoming {
            for split in self.open_splits(ctx) {
                if seen.insert(split) {
                    self.raw.push(Finding::Unclosed { split, end });
                }
            }
        }
    }

    /// The context of a step other than start and end, from its parents'.
    fn merge(&mut self, node: NodeIndex, is_join: bool) -> Ctx {
        let incoming = self.incoming(node);
        let Some(&(_, first)) = incoming.first() else {
            return ROOT;
        };
        let all_same = incoming.iter().all(|&(_, c)| c == first);
        if all_same && !is_join {
            return first;
        }
        let tops: Vec<Option<Frame>> = incoming.iter().map(|&(_, c)| self.top(c)).collect();
        if tops.iter().all(Option::is_none) {
            // Only reachable for a join: every path arrives outside any split.
            self.raw.push(Finding::InputsNotJoin {
                step: node,
                reason: NotJoin::NoSplit,
            });
            return ROOT;
        }
        let first_top = tops.iter().flatten().next().copied();
        let one_split = first_top.filter(|f| {
            tops.iter()
                .all(|t| t.is_some_and(|t| t.split == f.split && t.below == f.below))
        });
        let Some(frame) = one_split else {
            self.raw.push(Finding::Mixed {
                step: node,
                is_join,
                parts: incoming
                    .iter()
                    .zip(&tops)
                    .map(|(&(parent, _), top)| Part {
                        parent,
                        frame: top.map(|t| (t.split, t.branch)),
                    })
                    .collect(),
            });
            return if is_join {
                first_top.map_or(ROOT, |t| t.below)
            } else {
                first
            };
        };
        let mut covered: Vec<NodeIndex> = Vec::new();
        for t in tops.iter().flatten() {
            if !covered.contains(&t.branch) {
                covered.push(t.branch);
            }
        }
        let expected = self.branches(frame.split);
        if is_join
            && covered.len() == 1
            && expected.len() > 1
            && matches!(
                self.graph.step(frame.split).transition,
                Transition::Branch { .. }
            )
        {
            // A join of one branch out of several: the step most likely should not
            // take `inputs` at all. It stays inside the branch.
            self.raw.push(Finding::InputsNotJoin {
                step: node,
                reason: NotJoin::OneBranch {
                    split: frame.split,
                    branch: frame.branch,
                },
            });
            return first;
        }
        if !is_join {
            self.raw.push(Finding::JoinWithoutInputs {
                step: node,
                split: frame.split,
                branches: covered.clone(),
            });
        }
        let missing: Vec<NodeIndex> = expected
            .into_iter()
            .filter(|b| !covered.contains(b))
            .collect();
        if !missing.is_empty() {
            self.raw.push(Finding::MissingBranches {
                join: node,
                split: frame.split,
                missing,
            });
        }
        match self.closer.get(&frame.split) {
            Some(&first_join) if first_join != node => self.raw.push(Finding::JoinedTwice {
                split: frame.split,
                first: first_join,
                second: node,
            }),
            Some(_) => {}
            None => {
                self.closer.insert(frame.split, node);
            }
        }
        frame.below
    }

    /// The branches a split opens, in source order.
    fn branches(&self, split: NodeIndex) -> Vec<NodeIndex> {
        let g = self.graph;
        g.out_edges(split)
            .iter()
            .filter(|&&e| g.is_forward(e) && g.edge(e).kind.opens_split())
            .map(|&e| g.endpoints(e).1)
            .collect()
    }

    /// Splits whose branches stop early because of an error reported elsewhere, or
    /// that lead straight into a join (reported by `split_into_join`).
    fn broken_splits(&self) -> HashSet<NodeIndex> {
        let g = self.graph;
        let mut broken = HashSet::new();
        for &node in &g.topo {
            let ctx = self.ctx[node.index()].unwrap_or(ROOT);
            let closes_cycle = g.out_edges(node).iter().any(|&e| {
                let (_, to) = g.endpoints(e);
                let recursion = to == node && g.edge(e).kind == EdgeKind::Switch;
                !(g.is_forward(e) || recursion)
            });
            // A `@parallel` switch leaves its gang without the one join it needs;
            // `parallel_on_switch` says so.
            let parallel_switch = is_parallel(g.step(node))
                && matches!(g.step(node).transition, Transition::Switch { .. });
            if g.is_dead_end(node) || closes_cycle || parallel_switch {
                broken.extend(self.open_splits(ctx));
            }
            let into_join = g
                .out_edges(node)
                .iter()
                .any(|&e| g.edge(e).kind.opens_split() && g.step(g.endpoints(e).1).is_join);
            if into_join {
                broken.insert(node);
            }
        }
        broken
    }

    /// Drop findings about splits already reported or broken by another error.
    fn filter(&mut self) -> Vec<Finding> {
        let mut flagged = self.broken_splits();
        let mut kept = Vec::new();
        for finding in std::mem::take(&mut self.raw) {
            let keep = match &finding {
                Finding::Unclosed { split, .. }
                | Finding::MissingBranches { split, .. }
                | Finding::JoinedTwice { split, .. } => flagged.insert(*split),
                Finding::Mixed { parts, .. } => {
                    let splits: Vec<NodeIndex> = parts
                        .iter()
                        .filter_map(|p| p.frame.map(|(s, _)| s))
                        .collect();
                    let fresh = splits.iter().all(|s| !flagged.contains(s));
                    flagged.extend(splits);
                    fresh
                }
                Finding::InputsNotJoin {
                    reason: NotJoin::OneBranch { split, .. },
                    ..
                } => !flagged.contains(split),
                Finding::InputsNotJoin { .. } | Finding::JoinWithoutInputs { .. } => true,
            };
            if keep {
                kept.push(finding);
            }
        }
        kept
    }
}
