//! A parsed Twig template written out as a minijinja template that gives Twig's output. Where the
//! two languages agree the construct is written as it is; where they differ (PHP's truthiness,
//! loose comparison and arithmetic, `for` over hashes, ranges, attribute access, `??`, the ternary
//! operator, filters and tests with Twig's rules, variables that outlive the loop that set them) it
//! becomes a call into the `tw_*` runtime that [`super::runtime`] installs. Unsupported constructs
//! are refused by name.

use std::collections::BTreeSet;

use super::TwigError;
use super::parse::{Arg, Expr, Node};

/// Filters of Twig 3 (and the ones OpenConnector's shipped mappings use) with their parameter names,
/// for named arguments.
pub const FILTERS: &[(&str, &[&str])] = &[
    ("abs", &[]),
    ("batch", &["size", "fill", "preserve_keys"]),
    ("capitalize", &[]),
    ("column", &["name", "index"]),
    ("date", &["format", "timezone"]),
    ("date_modify", &["modifier"]),
    ("default", &["default"]),
    ("escape", &["strategy", "charset", "autoescape"]),
    ("e", &["strategy", "charset", "autoescape"]),
    ("filter", &["arrow"]),
    ("first", &[]),
    ("format", &[]),
    ("join", &["glue", "and"]),
    ("json_encode", &["options"]),
    ("keys", &[]),
    ("last", &[]),
    ("length", &[]),
    ("lower", &[]),
    ("map", &["arrow"]),
    ("merge", &["arr"]),
    ("nl2br", &[]),
    ("number_format", &["decimal", "decimal_point", "thousand_sep"]),
    ("raw", &[]),
    ("reduce", &["arrow", "initial"]),
    ("replace", &["from"]),
    ("reverse", &["preserve_keys"]),
    ("round", &["precision", "method"]),
    ("slice", &["start", "length", "preserve_keys"]),
    ("sort", &["arrow"]),
    ("split", &["delimiter", "limit"]),
    ("striptags", &["allowable_tags"]),
    ("title", &[]),
    ("trim", &["character_mask", "side"]),
    ("upper", &[]),
    ("url_encode", &[]),
    // OpenConnector's own, and PHP functions its shipped mappings call as filters.
    ("b64enc", &[]),
    ("b64dec", &[]),
    ("json_decode", &[]),
    ("jsonDecode", &[]),
    ("slugify", &[]),
    ("preg_replace", &["pattern", "replacement"]),
    ("strip_tags", &["allowable_tags"]),
];

/// Twig's tests.
const TESTS: &[&str] = &["defined", "null", "none", "empty", "iterable", "same as", "divisible by", "even", "odd"];

/// Twig's functions, and those OpenConnector adds.
const FUNCTIONS: &[&str] = &["range", "max", "min", "date", "attribute", "cycle", "constant", "random"];
const CUSTOM_FUNCTIONS: &[&str] = &["executeMapping", "generateUuid", "oauthToken", "jwtToken"];

/// The minijinja template for `nodes`, and whether it reads any variable of the context.
pub fn emit(nodes: &[Node]) -> Result<(String, bool), TwigError> {
    let mut assigned = BTreeSet::new();
    collect_assigned(nodes, &mut assigned);
    let mut emitter = Emitter {
        out: String::new(),
        assigned,
        bound: Vec::new(),
        rebound: Vec::new(),
        counter: 0,
        reads_context: false,
        parent_loops: Vec::new(),
        isolated: None,
    };
    if !emitter.assigned.is_empty() {
        emitter.out.push_str("{% set __tw = tw_scope() %}");
    }
    emitter.nodes(nodes)?;
    Ok((emitter.out, emitter.reads_context))
}

fn collect_assigned(nodes: &[Node], into: &mut BTreeSet<String>) {
    for node in nodes {
        match node {
            Node::Set { names, .. } => into.extend(names.iter().cloned()),
            Node::Capture { name, body } => {
                into.insert(name.clone());
                collect_assigned(body, into);
            }
            Node::If { branches, otherwise } => {
                branches.iter().for_each(|(_, body)| collect_assigned(body, into));
                otherwise.iter().for_each(|body| collect_assigned(body, into));
            }
            Node::For { body, otherwise, .. } => {
                collect_assigned(body, into);
                otherwise.iter().for_each(|body| collect_assigned(body, into));
            }
            Node::Apply { body, .. } | Node::With { body, .. } | Node::Autoescape { body, .. } => collect_assigned(body, into),
            Node::Text(_) | Node::Print(_) | Node::Do(_) => {}
        }
    }
}

struct Emitter {
    out: String,
    /// Names some `set` assigns: read through the template's own scope (`tw_get`).
    assigned: BTreeSet<String>,
    /// Names bound here (loop variables, arrow parameters): read as they are.
    bound: Vec<String>,
    /// Loop variables the loop's body sets: read through the scope, as `assigned` names are.
    rebound: Vec<String>,
    counter: usize,
    reads_context: bool,
    /// The enclosing loops' `loop` variables, kept under a name of their own for `loop.parent.loop`.
    parent_loops: Vec<String>,
    /// Inside `with … only`: the names the body itself sets (the others are undefined there).
    isolated: Option<BTreeSet<String>>,
}

impl Emitter {
    fn fresh(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("__tw{what}{}", self.counter)
    }

    fn nodes(&mut self, nodes: &[Node]) -> Result<(), TwigError> {
        for node in nodes {
            self.node(node)?;
        }
        Ok(())
    }

    fn node(&mut self, node: &Node) -> Result<(), TwigError> {
        match node {
            Node::Text(text) => self.text(text),
            Node::Print(expr) => {
                let code = self.printed(expr)?;
                self.out.push_str(&format!("{{{{ {code} }}}}"));
            }
            Node::If { branches, otherwise } => {
                for (i, (condition, body)) in branches.iter().enumerate() {
                    let condition = self.expr(condition)?;
                    self.out.push_str(&format!("{{% {} tw_bool({condition}) %}}", if i == 0 { "if" } else { "elif" }));
                    self.nodes(body)?;
                }
                if let Some(body) = otherwise {
                    self.out.push_str("{% else %}");
                    self.nodes(body)?;
                }
                self.out.push_str("{% endif %}");
            }
            Node::For { key, value, seq, body, otherwise } => {
                let seq = self.expr(seq)?;
                let mut sets = BTreeSet::new();
                collect_assigned(body, &mut sets);
                // Twig drops what a loop newly set when it ends (and keeps changes to what existed).
                let scope = (!sets.is_empty()).then(|| self.fresh("keys"));
                if let Some(scope) = &scope {
                    self.out.push_str(&format!("{{% set {scope} = tw_scope_keys(__tw) %}}"));
                }
                // Inside a loop, its `loop` is kept before the inner one shadows it.
                let parent = (!self.bound.is_empty() && self.bound.iter().any(|b| b == "loop")).then(|| self.fresh("parentloop"));
                if let Some(parent) = &parent {
                    self.out.push_str(&format!("{{% set {parent} = loop %}}"));
                }
                // A loop variable the body sets (`{% set doc = doc|merge(…) %}`) is one variable in
                // Twig: it lives in the scope for the iteration, and what it held before the loop
                // comes back after it.
                let rebound: Vec<String> = key.iter().chain([value]).filter(|name| sets.contains(*name)).cloned().collect();
                let saved = (!rebound.is_empty()).then(|| self.fresh("saved"));
                let rebound_names = rebound.iter().map(|n| quoted(n)).collect::<Vec<_>>().join(", ");
                if let Some(saved) = &saved {
                    self.out.push_str(&format!("{{% set {saved} = tw_scope_values(__tw, [{rebound_names}]) %}}"));
                }
                match key {
                    Some(key) => self.out.push_str(&format!("{{% for {key}, {value} in tw_pairs({seq}) %}}")),
                    None => self.out.push_str(&format!("{{% for {value} in tw_values({seq}) %}}")),
                }
                if !rebound.is_empty() {
                    self.out.push_str(&format!("{{{{ tw_set(__tw, [{rebound_names}], [{}]) }}}}", rebound.join(", ")));
                }
                let bound = self.bound.len();
                let outer_rebound = self.rebound.clone();
                self.bound.extend(key.iter().cloned());
                self.bound.push(value.clone());
                self.bound.push("loop".into());
                self.rebound.retain(|name| !key.iter().chain([value]).any(|n| n == name));
                self.rebound.extend(rebound.iter().cloned());
                // The outermost loop's parent has no loop.
                self.parent_loops.push(parent.unwrap_or_else(|| "tw_missing()".into()));
                self.nodes(body)?;
                self.parent_loops.pop();
                self.bound.truncate(bound);
                self.rebound = outer_rebound;
                if let Some(body) = otherwise {
                    self.out.push_str("{% else %}");
                    self.nodes(body)?;
                }
                self.out.push_str("{% endfor %}");
                if let Some(scope) = scope {
                    self.out.push_str(&format!("{{{{ tw_scope_keep(__tw, {scope}) }}}}"));
                }
                if let Some(saved) = saved {
                    self.out.push_str(&format!("{{{{ tw_scope_restore(__tw, [{rebound_names}], {saved}) }}}}"));
                }
            }
            Node::Set { names, values } => {
                let values: Vec<String> = values.iter().map(|v| self.expr(v)).collect::<Result<_, _>>()?;
                let names: Vec<String> = names.iter().map(|n| quoted(n)).collect();
                self.out.push_str(&format!("{{{{ tw_set(__tw, [{}], [{}]) }}}}", names.join(", "), values.join(", ")));
            }
            Node::Capture { name, body } => {
                let captured = self.fresh("capture");
                self.out.push_str(&format!("{{% set {captured} %}}"));
                self.nodes(body)?;
                self.out.push_str(&format!("{{% endset %}}{{{{ tw_set(__tw, [{}], [{captured}]) }}}}", quoted(name)));
            }
            Node::Apply { filters, body } => {
                let mut chain = Vec::new();
                for (name, args) in filters {
                    chain.push(self.filter_call(name, args)?);
                }
                self.out.push_str(&format!("{{% filter {} %}}", chain.join("|")));
                self.nodes(body)?;
                self.out.push_str("{% endfilter %}");
            }
            Node::With { variables, only, body } => {
                let bound = self.bound.len();
                let assignments = match variables {
                    None => Vec::new(),
                    Some(Expr::Hash(entries)) => {
                        let mut assignments = Vec::new();
                        for (key, value) in entries {
                            let Expr::Str(name) = key else { return Err(TwigError::unsupported(0, "`with` of a hash with computed keys")) };
                            assignments.push(format!("{name} = {}", self.expr(value)?));
                            self.bound.push(name.clone());
                        }
                        assignments
                    }
                    Some(_) => return Err(TwigError::unsupported(0, "`with` of anything but a hash literal")),
                };
                self.out.push_str(&format!("{{% with {} %}}", assignments.join(", ")));
                let outer = self.isolated.take();
                if *only {
                    let mut own = BTreeSet::new();
                    collect_assigned(body, &mut own);
                    self.isolated = Some(own);
                } else {
                    self.isolated.clone_from(&outer);
                }
                self.nodes(body)?;
                self.isolated = outer;
                self.bound.truncate(bound);
                self.out.push_str("{% endwith %}");
            }
            Node::Autoescape { strategy, body } => {
                let mode = match strategy.as_deref() {
                    None => "false",
                    Some("html") => "\"html\"",
                    Some(other) => return Err(TwigError::unsupported(0, format!("autoescape strategy `{other}`"))),
                };
                self.out.push_str(&format!("{{% autoescape {mode} %}}"));
                self.nodes(body)?;
                self.out.push_str("{% endautoescape %}");
            }
            Node::Do(expr) => {
                let code = self.expr(expr)?;
                self.out.push_str(&format!("{{{{ tw_discard({code}) }}}}"));
            }
        }
        Ok(())
    }

    /// Text as it is; a trailing `{` is printed apart, so it cannot join the next tag's delimiter.
    fn text(&mut self, text: &str) {
        if text.contains("{{") || text.contains("{%") || text.contains("{#") {
            // Verbatim text: printed as a string, never read as template syntax.
            self.out.push_str(&format!("{{{{ {}|safe }}}}", quoted(text)));
            return;
        }
        match text.strip_suffix('{') {
            Some(head) => {
                self.out.push_str(head);
                self.out.push_str("{{ \"{\" }}");
            }
            None => self.out.push_str(text),
        }
    }

    fn args(&mut self, args: &[Arg]) -> Result<Vec<String>, TwigError> {
        args.iter()
            .map(|arg| match &arg.name {
                None => self.expr(&arg.value),
                Some(name) => Err(TwigError::unsupported(0, format!("the named argument `{name}` here"))),
            })
            .collect()
    }

    /// A filter as a call with positional arguments (named ones put in their places).
    fn filter_call(&mut self, name: &str, args: &[Arg]) -> Result<String, TwigError> {
        let Some((_, params)) = FILTERS.iter().find(|(n, _)| *n == name) else {
            return Err(TwigError::unsupported(0, format!("the filter `{name}`")));
        };
        let mut positional: Vec<Option<String>> = Vec::new();
        for arg in args {
            let code = self.expr(&arg.value)?;
            match &arg.name {
                None => positional.push(Some(code)),
                Some(named) => {
                    let index = params
                        .iter()
                        .position(|p| p == named)
                        .ok_or_else(|| TwigError::syntax(0, format!("the filter `{name}` has no argument `{named}`")))?;
                    if positional.len() <= index {
                        positional.resize(index + 1, None);
                    }
                    positional[index] = Some(code);
                }
            }
        }
        // PHP ignores arguments past a function's parameters; `format` takes any number.
        if name != "format" {
            positional.truncate(params.len());
        }
        let args: Vec<String> = positional.into_iter().map(|a| a.unwrap_or_else(|| "tw_missing()".into())).collect();
        let filter = match name {
            "raw" => return Ok("raw".into()),
            "e" => "tw_escape".to_string(),
            "jsonDecode" => "tw_json_decode".to_string(),
            other => format!("tw_{other}"),
        };
        Ok(if args.is_empty() { filter } else { format!("{filter}({})", args.join(", ")) })
    }

    fn expr(&mut self, expr: &Expr) -> Result<String, TwigError> {
        Ok(match expr {
            Expr::Null => "none".into(),
            Expr::Bool(b) => b.to_string(),
            Expr::Int(n) => n.to_string(),
            Expr::Float(f) if f.is_finite() => format!("{f:?}"),
            Expr::Float(_) => "tw_infinity()".into(),
            Expr::Str(s) => quoted(s),
            Expr::Interpolated(parts) => {
                let parts: Vec<String> = parts.iter().map(|p| self.expr(p)).collect::<Result<_, _>>()?;
                format!("tw_concat({})", parts.join(", "))
            }
            Expr::Name(name) => self.name(name)?,
            Expr::Array(items) => {
                let items: Vec<String> = items.iter().map(|i| self.expr(i)).collect::<Result<_, _>>()?;
                format!("[{}]", items.join(", "))
            }
            Expr::Hash(entries) => {
                let mut pairs = Vec::new();
                for (key, value) in entries {
                    let key = match key {
                        // PHP makes a numeric string key an integer one: `{'1': x}` is `{1: x}`.
                        Expr::Str(s) => quoted(s),
                        other => format!("tw_key({})", self.expr(other)?),
                    };
                    pairs.push(format!("{key}: {}", self.expr(value)?));
                }
                format!("{{{}}}", pairs.join(", "))
            }
            Expr::Attr { object, key, call } => {
                if let Some(args) = call {
                    // Arrays have no methods (Twig gives null); a date has the few mappings call.
                    let (object, key) = (self.expr(object)?, self.expr(key)?);
                    return Ok(format!("tw_method({object}, {key}, [{}])", self.args(args)?.join(", ")));
                }
                let parent_of_loop = |e: &Expr| matches!(e, Expr::Attr { object, key, call: None } if matches!(&**object, Expr::Name(n) if n == "loop") && matches!(&**key, Expr::Str(k) if k == "parent"));
                if parent_of_loop(object) {
                    // `loop.parent` is the context around the loop: its `loop` is the enclosing one.
                    return match &**key {
                        Expr::Str(k) if k == "loop" => Ok(self.parent_loops.last().cloned().unwrap_or_else(|| "tw_missing()".into())),
                        Expr::Str(k) => self.name(k),
                        _ => Err(TwigError::unsupported(0, "`loop.parent[…]`")),
                    };
                }
                if matches!(&**object, Expr::Name(n) if n == "loop") && matches!(&**key, Expr::Str(k) if k == "parent") {
                    return Err(TwigError::unsupported(0, "`loop.parent` other than `loop.parent.loop` and `loop.parent.<name>`"));
                }
                let object = self.expr(object)?;
                match &**key {
                    Expr::Str(k) if is_identifier(k) => format!("{object}.{k}"),
                    other => format!("tw_attr({object}, {})", self.expr(other)?),
                }
            }
            Expr::Filter { input, name, args } => {
                let input = self.expr(input)?;
                let filter = self.filter_call(name, args)?;
                format!("({input}|{filter})")
            }
            Expr::Test { input, name, args, negated } => {
                if !TESTS.contains(&name.as_str()) {
                    return Err(TwigError::unsupported(0, format!("the test `{name}`")));
                }
                let input = self.expr(input)?;
                let args = self.args(args)?;
                let test = format!("tw_{}", name.replace(' ', "_"));
                let call = if args.is_empty() { test } else { format!("{test}({})", args.join(", ")) };
                format!("({input} is {}{call})", if *negated { "not " } else { "" })
            }
            Expr::Call { name, args } => {
                let code = self.args(args)?;
                if FUNCTIONS.contains(&name.as_str()) {
                    format!("tw_{name}({})", code.join(", "))
                } else if CUSTOM_FUNCTIONS.contains(&name.as_str()) {
                    format!("{name}({})", code.join(", "))
                } else {
                    return Err(TwigError::unsupported(0, format!("the function `{name}`")));
                }
            }
            // Twig writes `-2 ** 2` out as PHP source, where `**` binds tighter than the sign: `-(2 ** 2)`.
            Expr::Binary { op, left, right } if op == "**" && matches!(&**left, Expr::Unary { op: "-" | "+", .. }) => {
                let Expr::Unary { op: sign, operand } = &**left else { unreachable!("matched above") };
                let power = Expr::Binary { op: op.clone(), left: operand.clone(), right: right.clone() };
                self.expr(&Expr::Unary { op: sign, operand: Box::new(power) })?
            }
            Expr::Unary { op, operand } => {
                let operand = self.expr(operand)?;
                match *op {
                    "not" => format!("(not tw_bool({operand}))"),
                    "-" => format!("tw_neg({operand})"),
                    _ => format!("tw_pos({operand})"),
                }
            }
            Expr::Binary { op, left, right } => self.binary(op, left, right)?,
            Expr::Conditional { condition, then, otherwise } => {
                let (condition, then, otherwise) = (self.expr(condition)?, self.expr(then)?, self.expr(otherwise)?);
                format!("({then} if tw_bool({condition}) else {otherwise})")
            }
            Expr::Arrow { params, body } => self.arrow(params, body)?,
        })
    }

    /// An expression as `{{ }}` prints it: Twig's escaper leaves string constants alone, and looks
    /// at each branch of a conditional (`?:`, `??` too) on its own.
    fn printed(&mut self, expr: &Expr) -> Result<String, TwigError> {
        Ok(match expr {
            Expr::Str(_) => format!("({}|safe)", self.expr(expr)?),
            Expr::Conditional { condition, then, otherwise } => {
                let condition = self.expr(condition)?;
                format!("({} if tw_bool({condition}) else {})", self.printed(then)?, self.printed(otherwise)?)
            }
            Expr::Binary { op, left, right } if op == "??" => {
                let l = self.expr(left)?;
                format!("({} if ({l} is tw_null) else {})", self.printed(right)?, self.printed(left)?)
            }
            other => self.expr(other)?,
        })
    }

    fn name(&mut self, name: &str) -> Result<String, TwigError> {
        if self.rebound.iter().any(|b| b == name) {
            return Ok(format!("tw_get(__tw, {}, {name})", quoted(name)));
        }
        if self.bound.iter().any(|b| b == name) {
            return Ok(name.to_string());
        }
        if matches!(name, "_self" | "_context" | "_charset") {
            return Err(TwigError::unsupported(0, format!("`{name}`")));
        }
        if self.isolated.as_ref().is_some_and(|own| !own.contains(name)) {
            return Ok("tw_missing()".into());
        }
        self.reads_context = true;
        if !is_identifier(name) || is_minijinja_word(name) {
            return Ok(format!("tw_var({})", quoted(name)));
        }
        Ok(if self.assigned.contains(name) { format!("tw_get(__tw, {}, {name})", quoted(name)) } else { name.to_string() })
    }

    fn binary(&mut self, op: &str, left: &Expr, right: &Expr) -> Result<String, TwigError> {
        let (l, r) = (self.expr(left)?, self.expr(right)?);
        let call = |f: &str| format!("tw_{f}({l}, {r})");
        Ok(match op {
            "and" => format!("(tw_bool({l}) and tw_bool({r}))"),
            "or" => format!("(tw_bool({l}) or tw_bool({r}))"),
            // Lazy, as in Twig: the right side is only evaluated when the left is null or undefined.
            "??" => format!("({r} if ({l} is tw_null) else {l})"),
            "~" => call("concat"),
            "+" => call("add"),
            "-" => call("sub"),
            "*" => call("mul"),
            "/" => call("div"),
            "//" => call("floordiv"),
            "%" => call("mod"),
            "**" => call("pow"),
            "==" => call("eq"),
            "!=" => format!("(not tw_eq({l}, {r}))"),
            "<" => call("lt"),
            ">" => format!("tw_lt({r}, {l})"),
            "<=" => format!("(not tw_lt({r}, {l}))"),
            ">=" => format!("(not tw_lt({l}, {r}))"),
            "<=>" => call("spaceship"),
            "in" => call("in"),
            "not in" => format!("(not tw_in({l}, {r}))"),
            ".." => call("range"),
            "matches" => call("matches"),
            "starts with" => call("starts_with"),
            "ends with" => call("ends_with"),
            "has some" => call("has_some"),
            "has every" => call("has_every"),
            "b-and" => call("bitand"),
            "b-or" => call("bitor"),
            "b-xor" => call("bitxor"),
            other => return Err(TwigError::unsupported(0, format!("the operator `{other}`"))),
        })
    }

    /// An arrow function: its body as an expression of its own, with the names it reads from around
    /// it passed in.
    fn arrow(&mut self, params: &[String], body: &Expr) -> Result<String, TwigError> {
        let mut free = BTreeSet::new();
        free_names(body, params, &mut free);
        let mut captures = Vec::new();
        for name in &free {
            captures.push(format!("{}: {}", quoted(name), self.name(name)?));
        }
        let mut inner = Emitter {
            out: String::new(),
            assigned: BTreeSet::new(),
            bound: params.iter().chain(&free).cloned().collect(),
            rebound: Vec::new(),
            counter: 0,
            reads_context: false,
            parent_loops: Vec::new(),
            isolated: None,
        };
        // `tw_spent` runs last, when the body's cost is known (see `runtime::call_arrow`).
        let code = format!("tw_spent({})", inner.expr(body)?);
        let params: Vec<String> = params.iter().map(|p| quoted(p)).collect();
        Ok(format!("tw_arrow([{}], {}, {{{}}})", params.join(", "), quoted(&code), captures.join(", ")))
    }
}

/// The names an arrow's body reads that are not its parameters.
fn free_names(expr: &Expr, params: &[String], into: &mut BTreeSet<String>) {
    let mut stack = vec![expr];
    while let Some(expr) = stack.pop() {
        match expr {
            Expr::Name(name) if !params.contains(name) => {
                into.insert(name.clone());
            }
            Expr::Interpolated(items) | Expr::Array(items) => stack.extend(items),
            Expr::Hash(entries) => entries.iter().for_each(|(k, v)| stack.extend([k, v])),
            Expr::Attr { object, key, call } => {
                stack.extend([&**object, &**key]);
                call.iter().flatten().for_each(|a| stack.push(&a.value));
            }
            Expr::Filter { input, args, .. } | Expr::Test { input, args, .. } => {
                stack.push(input);
                stack.extend(args.iter().map(|a| &a.value));
            }
            Expr::Call { args, .. } => stack.extend(args.iter().map(|a| &a.value)),
            Expr::Unary { operand, .. } => stack.push(operand),
            Expr::Binary { left, right, .. } => stack.extend([&**left, &**right]),
            Expr::Conditional { condition, then, otherwise } => stack.extend([&**condition, &**then, &**otherwise]),
            Expr::Arrow { params: inner, body } => {
                let mut nested = BTreeSet::new();
                let all: Vec<String> = params.iter().chain(inner).cloned().collect();
                free_names(body, &all, &mut nested);
                into.extend(nested);
            }
            _ => {}
        }
    }
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

pub(super) fn is_identifier(text: &str) -> bool {
    text.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !is_minijinja_word(text)
}

/// Words minijinja reads as keywords or constants, which Twig lets be variable names.
fn is_minijinja_word(text: &str) -> bool {
    matches!(
        text,
        "and"
            | "or"
            | "not"
            | "in"
            | "is"
            | "if"
            | "else"
            | "true"
            | "false"
            | "none"
            | "True"
            | "False"
            | "None"
            | "self"
            | "super"
            | "loop"
            | "caller"
            | "varargs"
            | "kwargs"
    )
}
