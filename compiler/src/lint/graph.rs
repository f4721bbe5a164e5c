//! The step graph every rule reads, built once per `lint::run`: one node per step, one
//! edge per known `self.next(...)` target, plus the facts several rules share
//! (reachability, cycle-closing edges, a topological order).
//!
//! Targets that name no step are kept aside in `unknown` and never become edges, so the
//! rule that reports them is the only one that sees them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use flowc_ir::{Flow, Step, Target, Transition};
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::Dfs;
use petgraph::Direction;

use crate::diagnostics::did_you_mean;

/// How an edge leaves its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EdgeKind {
    /// `self.next(self.a)`, and the edge out of a join.
    Linear,
    /// One branch of `self.next(self.a, self.b)`.
    Branch,
    /// `self.next(self.a, foreach="items")`, or a `num_parallel` fan-out into a
    /// `@parallel` step: one branch that runs as many tasks.
    Foreach,
    /// One case of `self.next({...}, condition="x")`: exactly one case runs.
    Switch,
}

impl EdgeKind {
    /// True for the edges that open a new split that a join must close.
    pub(crate) fn opens_split(self) -> bool {
        matches!(self, EdgeKind::Branch | EdgeKind::Foreach)
    }
}

#[derive(Debug)]
pub(crate) struct Edge<'f> {
    pub(crate) kind: EdgeKind,
    /// The `self.<step>` that wrote this edge.
    pub(crate) target: &'f Target,
}

/// A `self.next(...)` target that names no step.
#[derive(Debug)]
pub(crate) struct UnknownTarget<'f> {
    pub(crate) from: NodeIndex,
    pub(crate) target: &'f Target,
    /// The step the name most likely meant, if one is close enough.
    pub(crate) suggestion: Option<&'f str>,
}

/// An edge that closes a cycle, with the cycle it closes (first step repeated last).
#[derive(Debug)]
pub(crate) struct BackEdge {
    pub(crate) edge: EdgeIndex,
    pub(crate) path: Vec<NodeIndex>,
}

#[derive(Debug)]
pub(crate) struct StepGraph<'f> {
    pub(crate) flow: &'f Flow,
    /// Node weights index `flow.steps`.
    pub(crate) graph: DiGraph<usize, Edge<'f>>,
    by_name: HashMap<&'f str, NodeIndex>,
    /// Outgoing edges of each node in source order (petgraph lists them newest first).
    out: Vec<Vec<EdgeIndex>>,
    pub(crate) start: Option<NodeIndex>,
    pub(crate) end: Option<NodeIndex>,
    pub(crate) unknown: Vec<UnknownTarget<'f>>,
    /// Per node: some target of its transition names no step.
    has_unknown: Vec<bool>,
    /// Reachable from the start step, following known edges and, for a misspelt
    /// target, the step it most likely meant (so a typo is reported once, not also as
    /// every step after it being unreachable).
    pub(crate) reachable: Vec<bool>,
    /// Reachable from the start step through known edges only.
    pub(crate) reachable_known: Vec<bool>,
    pub(crate) back_edges: Vec<BackEdge>,
    /// Edges the structural analysis ignores: cycle-closing edges, edges into the start
    /// step and a switch case looping to its own step.
    ignored: Vec<bool>,
    /// The steps reachable from start, every parent before its children (ignored
    /// edges aside).
    pub(crate) topo: Vec<NodeIndex>,
}

impl<'f> StepGraph<'f> {
    pub(crate) fn build(flow: &'f Flow) -> Self {
        let mut graph = DiGraph::with_capacity(flow.steps.len(), flow.steps.len() + 8);
        let mut by_name: HashMap<&str, NodeIndex> = HashMap::with_capacity(flow.steps.len());
        // A class body that defines a method twice keeps the last definition, as Python
        // does; the frontend reports the duplicate.
        let mut last_index: HashMap<&str, usize> = HashMap::with_capacity(flow.steps.len());
        for (i, step) in flow.steps.iter().enumerate() {
            last_index.insert(step.name.as_str(), i);
        }
        for (i, step) in flow.steps.iter().enumerate() {
            if last_index.get(step.name.as_str()) == Some(&i) {
                by_name.insert(step.name.as_str(), graph.add_node(i));
            }
        }
        let mut out = vec![Vec::new(); graph.node_count()];
        let mut unknown = Vec::new();
        for node in graph.node_indices() {
            let step = &flow.steps[graph[node]];
            let targets = step.transition.targets();
            let kind = match &step.transition {
                Transition::End => continue,
                Transition::Linear { .. } => EdgeKind::Linear,
                Transition::Foreach { .. } => EdgeKind::Foreach,
                Transition::Switch { .. } => EdgeKind::Switch,
                Transition::Branch { to } => {
                    let distinct: HashSet<&str> = to.iter().map(|t| t.step.as_str()).collect();
                    if distinct.len() > 1 {
                        EdgeKind::Branch
                    } else {
                        EdgeKind::Linear
                    }
                }
            };
            let mut seen: HashSet<&str> = HashSet::new();
            for target in targets {
                if !seen.insert(target.step.as_str()) && kind != EdgeKind::Switch {
                    // A split naming a step twice is one branch; the duplicate is
                    // reported by its own rule.
                    continue;
                }
                match by_name.get(target.step.as_str()) {
                    Some(&to) => {
                        let to_step = &flow.steps[graph[to]];
                        // The IR has no num_parallel transition: a plain edge into a
                        // @parallel step is the gang fan-out Metaflow treats as a foreach.
                        let kind = if kind == EdgeKind::Linear && is_parallel(to_step) {
                            EdgeKind::Foreach
                        } else {
                            kind
                        };
                        let e = graph.add_edge(node, to, Edge { kind, target });
                        out[node.index()].push(e);
                    }
                    None => unknown.push(UnknownTarget {
                        from: node,
                        target,
                        suggestion: did_you_mean(
                            &target.step,
                            flow.steps.iter().map(|s| s.name.as_str()),
                        ),
                    }),
                }
            }
        }
        let start = by_name.get(flow.start_step.as_str()).copied();
        let end = by_name.get(flow.end_step.as_str()).copied();
        let n = graph.node_count();
        let mut has_unknown = vec![false; n];
        for u in &unknown {
            has_unknown[u.from.index()] = true;
        }
        let mut model = StepGraph {
            flow,
            ignored: vec![false; graph.edge_count()],
            graph,
            by_name,
            out,
            start,
            end,
            unknown,
            has_unknown,
            reachable: vec![false; n],
            reachable_known: vec![false; n],
            back_edges: Vec::new(),
            topo: Vec::new(),
        };
        model.find_cycles();
        model.order();
        model.find_reachable();
        model
    }

    pub(crate) fn step(&self, node: NodeIndex) -> &'f Step {
        &self.flow.steps[self.graph[node]]
    }

    pub(crate) fn name(&self, node: NodeIndex) -> &'f str {
        self.step(node).name.as_str()
    }

    pub(crate) fn node(&self, name: &str) -> Option<NodeIndex> {
        self.by_name.get(name).copied()
    }

    /// Every node, in source order.
    pub(crate) fn nodes(&self) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph.node_indices()
    }

    pub(crate) fn edge(&self, e: EdgeIndex) -> &Edge<'f> {
        &self.graph[e]
    }

    pub(crate) fn endpoints(&self, e: EdgeIndex) -> (NodeIndex, NodeIndex) {
        // Every EdgeIndex handed out comes from this graph, which never removes edges.
        self.graph
            .edge_endpoints(e)
            .unwrap_or((NodeIndex::end(), NodeIndex::end()))
    }

    /// Outgoing edges of `node` in source order.
    pub(crate) fn out_edges(&self, node: NodeIndex) -> &[EdgeIndex] {
        self.out.get(node.index()).map_or(&[], Vec::as_slice)
    }

    /// Incoming edges of `node` (any order).
    pub(crate) fn in_edges(&self, node: NodeIndex) -> impl Iterator<Item = EdgeIndex> + '_ {
        use petgraph::visit::EdgeRef;
        self.graph
            .edges_directed(node, Direction::Incoming)
            .map(|e| e.id())
    }

    /// False for edges the structural analysis leaves out (see `ignored`).
    pub(crate) fn is_forward(&self, e: EdgeIndex) -> bool {
        !self.ignored.get(e.index()).copied().unwrap_or(true)
    }

    /// True when the step has no outgoing edges because of an error another rule
    /// reports: no `self.next(...)` on a step other than the end, or a target that
    /// names no step.
    pub(crate) fn is_dead_end(&self, node: NodeIndex) -> bool {
        (Some(node) != self.end && matches!(self.step(node).transition, Transition::End))
            || self.has_unknown.get(node.index()).copied().unwrap_or(false)
    }

    /// Depth-first search from start, then from every other step in source order,
    /// recording cycle-closing edges with their path, and which steps the search from
    /// start reaches.
    fn find_cycles(&mut self) {
        const NEW: u8 = 0;
        const ON_PATH: u8 = 1;
        const DONE: u8 = 2;
        let n = self.graph.node_count();
        let mut state = vec![NEW; n];
        let mut path_pos = vec![0usize; n];
        let roots: Vec<NodeIndex> = self.start.into_iter().chain(self.nodes()).collect();
        for (root_number, root) in roots.into_iter().enumerate() {
            if state[root.index()] != NEW {
                continue;
            }
            let from_start = root_number == 0 && self.start.is_some();
            let mut path: Vec<NodeIndex> = vec![root];
            let mut stack: Vec<(NodeIndex, usize)> = vec![(root, 0)];
            state[root.index()] = ON_PATH;
            path_pos[root.index()] = 0;
            while let Some(top) = stack.last_mut() {
                let (node, next) = *top;
                let Some(&e) = self.out.get(node.index()).and_then(|o| o.get(next)) else {
                    stack.pop();
                    path.pop();
                    state[node.index()] = DONE;
                    if from_start {
                        self.reachable_known[node.index()] = true;
                    }
                    continue;
                };
                top.1 += 1;
                let (_, to) = self.endpoints(e);
                if to == node && self.graph[e].kind == EdgeKind::Switch {
                    // Metaflow's recursion: a switch case that re-runs its own step.
                    self.ignored[e.index()] = true;
                } else if Some(to) == self.start {
                    // Reported by its own rule, whatever the path.
                    self.ignored[e.index()] = true;
                } else if state[to.index()] == ON_PATH {
                    self.ignored[e.index()] = true;
                    let mut cycle = path[path_pos[to.index()]..].to_vec();
                    cycle.push(to);
                    self.back_edges.push(BackEdge {
                        edge: e,
                        path: cycle,
                    });
                } else if state[to.index()] == NEW {
                    state[to.index()] = ON_PATH;
                    path_pos[to.index()] = path.len();
                    path.push(to);
                    stack.push((to, 0));
                }
            }
        }
    }

    /// Orders the steps reachable from start so that every step comes after its
    /// parents (ignored edges aside), taking the earliest step in source order whenever
    /// several are ready, so findings come out in the order a reader meets them.
    fn order(&mut self) {
        let n = self.graph.node_count();
        let mut waiting = vec![0usize; n];
        for e in self.graph.edge_indices() {
            let (from, to) = self.endpoints(e);
            if self.is_forward(e) && self.reachable_known[from.index()] {
                waiting[to.index()] += 1;
            }
        }
        let mut ready: BinaryHeap<Reverse<usize>> =
            self.start.map(|s| Reverse(s.index())).into_iter().collect();
        let mut topo = Vec::with_capacity(n);
        while let Some(Reverse(i)) = ready.pop() {
            let node = NodeIndex::new(i);
            topo.push(node);
            for &e in self.out_edges(node) {
                if !self.is_forward(e) {
                    continue;
                }
                let (_, to) = self.endpoints(e);
                waiting[to.index()] -= 1;
                if waiting[to.index()] == 0 {
                    ready.push(Reverse(to.index()));
                }
            }
        }
        self.topo = topo;
    }

    fn find_reachable(&mut self) {
        let Some(start) = self.start else {
            return;
        };
        let mut dfs = Dfs::new(&self.graph, start);
        let mut pending: Vec<NodeIndex> = Vec::new();
        let mut repaired = vec![false; self.unknown.len()];
        loop {
            while let Some(node) = dfs.next(&self.graph) {
                self.reachable[node.index()] = true;
            }
            // Follow each misspelt target from a reached step to the step it meant.
            for (i, u) in self.unknown.iter().enumerate() {
                if repaired[i] || !self.reachable[u.from.index()] {
                    continue;
                }
                repaired[i] = true;
                if let Some(to) = u.suggestion.and_then(|s| self.node(s)) {
                    if !self.reachable[to.index()] {
                        pending.push(to);
                    }
                }
            }
            let Some(next) = pending.pop() else {
                break;
            };
            dfs.move_to(next);
        }
    }
}

/// `@parallel` on the step, read from the typed view or, failing that, as written.
pub(crate) fn is_parallel(step: &Step) -> bool {
    step.spec.parallel || step.decorators.iter().any(|d| d.name == "parallel")
}

/// True when the step has a `self.next(...)` call that the frontend could not read (it
/// reports why): the IR then holds `Transition::End` with the call's span.
pub(crate) fn has_unread_transition(step: &Step) -> bool {
    matches!(step.transition, Transition::End) && step.transition_span.is_some()
}

/// The span to point at for a step's transition: the `self.next(...)` call, or the
/// step's name when there is none.
pub(crate) fn next_span(step: &Step) -> flowc_ir::Span {
    step.transition_span.unwrap_or(step.name_span)
}
