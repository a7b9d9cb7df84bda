//! Twig's parser, as `Twig\ExpressionParser` and the core token parsers build a template: operator
//! precedence and associativity, postfix attribute access, subscripts, slices and filters, tests with
//! one-word and two-word names, arrow functions, hashes with bare keys, string interpolation; and the
//! tags `if`/`elseif`/`else`, `for` (with `else`), `set` (and its block form), `apply`, `with`,
//! `autoescape` and `do`. Anything else of Twig is refused here, by name.

use super::TwigError;
use super::lex::{Piece, StrPart, Token};

/// How deeply expressions and tags may nest in one template.
const MAX_NESTING: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A double-quoted string with `#{…}` parts: concatenated.
    Interpolated(Vec<Expr>),
    Name(String),
    Array(Vec<Expr>),
    Hash(Vec<(Expr, Expr)>),
    /// `a.b`, `a[b]`, `a.b(args)` (a method call, which arrays do not have).
    Attr {
        object: Box<Expr>,
        key: Box<Expr>,
        call: Option<Vec<Arg>>,
    },
    Filter {
        input: Box<Expr>,
        name: String,
        args: Vec<Arg>,
    },
    Test {
        input: Box<Expr>,
        name: String,
        args: Vec<Arg>,
        negated: bool,
    },
    Call {
        name: String,
        args: Vec<Arg>,
    },
    Unary {
        op: &'static str,
        operand: Box<Expr>,
    },
    Binary {
        op: String,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Conditional {
        condition: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    Arrow {
        params: Vec<String>,
        body: Box<Expr>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: Option<String>,
    pub value: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Print(Expr),
    If { branches: Vec<(Expr, Vec<Node>)>, otherwise: Option<Vec<Node>> },
    For { key: Option<String>, value: String, seq: Expr, body: Vec<Node>, otherwise: Option<Vec<Node>> },
    Set { names: Vec<String>, values: Vec<Expr> },
    Capture { name: String, body: Vec<Node> },
    Apply { filters: Vec<(String, Vec<Arg>)>, body: Vec<Node> },
    With { variables: Option<Expr>, only: bool, body: Vec<Node> },
    Autoescape { strategy: Option<String>, body: Vec<Node> },
    Do(Expr),
}

/// Tags Twig has that syncline does not run: named in the refusal.
const REFUSED_TAGS: [&str; 14] = [
    "extends",
    "block",
    "include",
    "embed",
    "import",
    "from",
    "use",
    "macro",
    "sandbox",
    "deprecated",
    "flush",
    "cache",
    "guard",
    "spaceless",
];

pub fn parse(pieces: Vec<Piece>) -> Result<Vec<Node>, TwigError> {
    let mut parser = Parser { pieces: pieces.into_iter().peekable(), depth: 0, pending: None };
    let (nodes, end) = parser.body(&[])?;
    match end {
        None => Ok(nodes),
        Some((tag, at)) => Err(TwigError::syntax(at, format!("unexpected `{tag}` tag"))),
    }
}

/// The tag that ended a body, and where.
type EndTag = (String, usize);

struct Parser {
    pieces: std::iter::Peekable<std::vec::IntoIter<Piece>>,
    depth: usize,
    /// The rest of the tokens of the tag that ended a body (`elseif` carries its condition).
    pending: Option<Tokens>,
}

impl Parser {
    /// Nodes up to one of the `ends` tags (whose name and tokens after it are returned) or the end.
    fn body(&mut self, ends: &[&str]) -> Result<(Vec<Node>, Option<EndTag>), TwigError> {
        let mut nodes = Vec::new();
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(TwigError::syntax(0, format!("tags nest deeper than {MAX_NESTING} levels")));
        }
        while let Some(piece) = self.pieces.next() {
            match piece {
                Piece::Text(text) | Piece::Verbatim(text) => nodes.push(Node::Text(text)),
                Piece::Print(tokens, at) => {
                    let mut tokens = Tokens::new(tokens, at);
                    let expr = tokens.expression(0)?;
                    tokens.done()?;
                    nodes.push(Node::Print(expr));
                }
                Piece::Tag(tokens, at) => {
                    let mut tokens = Tokens::new(tokens, at);
                    let name = tokens.name().ok_or_else(|| TwigError::syntax(at, "a tag must start with its name"))?;
                    if ends.contains(&name.as_str()) {
                        self.depth -= 1;
                        self.pending = Some(tokens);
                        return Ok((nodes, Some((name, at))));
                    }
                    nodes.push(self.tag(&name, tokens, at)?);
                }
            }
        }
        self.depth -= 1;
        Ok((nodes, None))
    }
}

/// The tokens of one tag, read from the front.
struct Tokens {
    tokens: Vec<Token>,
    at: usize,
    next: usize,
    depth: usize,
}

impl Parser {
    fn tag(&mut self, name: &str, mut tokens: Tokens, at: usize) -> Result<Node, TwigError> {
        match name {
            "if" => {
                let mut branches = Vec::new();
                let mut condition = tokens.expression(0)?;
                tokens.done()?;
                loop {
                    let (body, end) = self.body(&["elseif", "else", "endif"])?;
                    branches.push((condition, body));
                    match end.as_ref().map(|(tag, _)| tag.as_str()) {
                        Some("elseif") => {
                            let mut rest = self.take_pending();
                            condition = rest.expression(0)?;
                            rest.done()?;
                        }
                        Some("else") => {
                            self.take_pending().done()?;
                            let (otherwise, end) = self.body(&["endif"])?;
                            self.close(end, "endif", at)?;
                            return Ok(Node::If { branches, otherwise: Some(otherwise) });
                        }
                        Some(_) => {
                            self.take_pending().done()?;
                            return Ok(Node::If { branches, otherwise: None });
                        }
                        None => return Err(TwigError::syntax(at, "`if` is not closed by `endif`")),
                    }
                }
            }
            "for" => {
                let first = tokens.assign_name()?;
                let (key, value) = if tokens.eat(&Token::Punct(',')) { (Some(first), tokens.assign_name()?) } else { (None, first) };
                if !tokens.eat(&Token::Op("in".into())) {
                    return Err(TwigError::syntax(at, "`for` needs `in`"));
                }
                let seq = tokens.expression(0)?;
                tokens.done()?;
                let (body, end) = self.body(&["else", "endfor"])?;
                let otherwise = match end.as_ref().map(|(tag, _)| tag.as_str()) {
                    Some("else") => {
                        self.take_pending().done()?;
                        let (otherwise, end) = self.body(&["endfor"])?;
                        self.close(end, "endfor", at)?;
                        Some(otherwise)
                    }
                    Some(_) => {
                        self.take_pending().done()?;
                        None
                    }
                    None => return Err(TwigError::syntax(at, "`for` is not closed by `endfor`")),
                };
                Ok(Node::For { key, value, seq, body, otherwise })
            }
            "set" => {
                let mut names = vec![tokens.assign_name()?];
                while tokens.eat(&Token::Punct(',')) {
                    names.push(tokens.assign_name()?);
                }
                if tokens.eat(&Token::Op("=".into())) {
                    let mut values = vec![tokens.expression(0)?];
                    while tokens.eat(&Token::Punct(',')) {
                        values.push(tokens.expression(0)?);
                    }
                    tokens.done()?;
                    if values.len() != names.len() {
                        return Err(TwigError::syntax(at, "`set` needs as many values as names"));
                    }
                    return Ok(Node::Set { names, values });
                }
                tokens.done()?;
                if names.len() > 1 {
                    return Err(TwigError::syntax(at, "a `set` block takes one name"));
                }
                let (body, end) = self.body(&["endset"])?;
                self.close(end, "endset", at)?;
                Ok(Node::Capture { name: names.remove(0), body })
            }
            // Twig 3 removed the `filter` tag (it says "Unknown tag"); `apply` replaced it.
            "apply" => {
                let mut filters = Vec::new();
                loop {
                    let filter = tokens.name().ok_or_else(|| TwigError::syntax(at, "`apply` needs a filter"))?;
                    let args = if tokens.peek() == Some(&Token::Punct('(')) { tokens.arguments(true)? } else { Vec::new() };
                    filters.push((filter, args));
                    if !tokens.eat(&Token::Punct('|')) {
                        break;
                    }
                }
                tokens.done()?;
                let end_tag = if name == "apply" { "endapply" } else { "endfilter" };
                let (body, end) = self.body(&[end_tag])?;
                self.close(end, end_tag, at)?;
                Ok(Node::Apply { filters, body })
            }
            "with" => {
                let variables = if tokens.peek().is_some() && tokens.peek() != Some(&Token::Name("only".into())) {
                    Some(tokens.expression(0)?)
                } else {
                    None
                };
                let only = tokens.eat(&Token::Name("only".into()));
                tokens.done()?;
                let (body, end) = self.body(&["endwith"])?;
                self.close(end, "endwith", at)?;
                Ok(Node::With { variables, only, body })
            }
            "autoescape" => {
                let strategy = match tokens.peek().cloned() {
                    None => Some("html".to_string()),
                    Some(Token::Str(parts)) => {
                        tokens.next += 1;
                        Some(plain_text(&parts).ok_or_else(|| TwigError::syntax(at, "an autoescape strategy is a plain string"))?)
                    }
                    Some(Token::Name(word)) if word == "false" => {
                        tokens.next += 1;
                        None
                    }
                    _ => return Err(TwigError::syntax(at, "`autoescape` takes a strategy name or `false`")),
                };
                tokens.done()?;
                let (body, end) = self.body(&["endautoescape"])?;
                self.close(end, "endautoescape", at)?;
                Ok(Node::Autoescape { strategy, body })
            }
            "do" => {
                let expr = tokens.expression(0)?;
                tokens.done()?;
                Ok(Node::Do(expr))
            }
            _ if REFUSED_TAGS.contains(&name) => Err(TwigError::unsupported(at, format!("the Twig tag `{name}`"))),
            _ => Err(TwigError::syntax(at, format!("unknown tag `{name}`"))),
        }
    }

    fn take_pending(&mut self) -> Tokens {
        self.pending.take().unwrap_or_else(|| Tokens::new(Vec::new(), 0))
    }

    fn close(&mut self, end: Option<(String, usize)>, wanted: &str, at: usize) -> Result<(), TwigError> {
        match end {
            Some((tag, _)) if tag == wanted => self.take_pending().done(),
            _ => Err(TwigError::syntax(at, format!("a tag is not closed by `{wanted}`"))),
        }
    }
}

fn plain_text(parts: &[StrPart]) -> Option<String> {
    match parts {
        [StrPart::Text(text)] => Some(text.clone()),
        _ => None,
    }
}

/// Binary operators: (precedence, right-associative).
fn binary(op: &str) -> Option<(u32, bool)> {
    Some(match op {
        "or" => (10, false),
        "and" => (15, false),
        "b-or" => (16, false),
        "b-xor" => (17, false),
        "b-and" => (18, false),
        "==" | "!=" | "<=>" | "<" | ">" | ">=" | "<=" | "not in" | "in" | "matches" | "starts with" | "ends with" | "has some"
        | "has every" => (20, false),
        ".." => (25, false),
        "+" | "-" => (30, false),
        "~" => (40, false),
        "*" | "/" | "//" | "%" => (60, false),
        "is" | "is not" => (100, false),
        "**" => (200, true),
        "??" => (300, true),
        _ => return None,
    })
}

/// Two-word tests, by their first word.
const TWO_WORD_TESTS: [(&str, &str); 2] = [("same", "as"), ("divisible", "by")];

impl Tokens {
    fn new(tokens: Vec<Token>, at: usize) -> Tokens {
        Tokens { tokens, at, next: 0, depth: 0 }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.next + ahead)
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == Some(token) {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &Token, what: &str) -> Result<(), TwigError> {
        if self.eat(token) { Ok(()) } else { Err(self.error(format!("expected {what}"))) }
    }

    fn error(&self, message: String) -> TwigError {
        let found = match self.peek() {
            None => "the end of the tag".to_string(),
            Some(token) => format!("{token:?}"),
        };
        TwigError::syntax(self.at, format!("{message}, found {found}"))
    }

    fn done(&self) -> Result<(), TwigError> {
        if self.next < self.tokens.len() { Err(self.error("unexpected token".into())) } else { Ok(()) }
    }

    fn name(&mut self) -> Option<String> {
        match self.peek() {
            Some(Token::Name(name)) => {
                let name = name.clone();
                self.next += 1;
                Some(name)
            }
            _ => None,
        }
    }

    /// A name to assign to (word operators such as `in` count as names here, as in Twig).
    fn assign_name(&mut self) -> Result<String, TwigError> {
        let name = match self.peek() {
            Some(Token::Name(name)) => name.clone(),
            Some(Token::Op(op)) if op.chars().all(|c| c.is_ascii_alphabetic()) => op.clone(),
            _ => return Err(self.error("expected a variable name".into())),
        };
        if ["true", "false", "none", "null"].contains(&name.to_ascii_lowercase().as_str()) {
            return Err(TwigError::syntax(self.at, format!("you cannot assign a value to `{name}`")));
        }
        self.next += 1;
        Ok(name)
    }

    fn enter(&mut self) -> Result<(), TwigError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(TwigError::syntax(self.at, format!("an expression nests deeper than {MAX_NESTING} levels")));
        }
        Ok(())
    }

    /// `parseExpression($precedence)`, with the conditional operator at precedence 0.
    fn expression(&mut self, precedence: u32) -> Result<Expr, TwigError> {
        self.enter()?;
        let mut expr = self.primary()?;
        // A chain of operators (`a + b + c …`) nests to the left: each link is a level too.
        let depth = self.depth;
        while let Some(Token::Op(op)) = self.peek().cloned() {
            let Some((op_precedence, right)) = binary(&op) else { break };
            if op_precedence < precedence {
                break;
            }
            self.next += 1;
            self.enter()?;
            expr = match op.as_str() {
                "is" | "is not" => self.test(expr, op == "is not")?,
                _ => {
                    let next = if right { op_precedence } else { op_precedence + 1 };
                    let rhs = self.operand(next)?;
                    Expr::Binary { op, left: Box::new(expr), right: Box::new(rhs) }
                }
            };
        }
        self.depth = depth;
        if precedence == 0 {
            expr = self.conditional(expr)?;
        }
        self.depth -= 1;
        Ok(expr)
    }

    /// The right side of a binary operator: Twig lets it be an arrow function.
    fn operand(&mut self, precedence: u32) -> Result<Expr, TwigError> {
        match self.arrow()? {
            Some(arrow) => Ok(arrow),
            None => self.expression(precedence),
        }
    }

    fn conditional(&mut self, mut expr: Expr) -> Result<Expr, TwigError> {
        let depth = self.depth;
        while self.eat(&Token::Punct('?')) {
            self.enter()?;
            let (then, otherwise) = if self.eat(&Token::Punct(':')) {
                // `a ?: b`
                (expr.clone(), self.expression(0)?)
            } else {
                let then = self.expression(0)?;
                let otherwise = if self.eat(&Token::Punct(':')) { self.expression(0)? } else { Expr::Str(String::new()) };
                (then, otherwise)
            };
            expr = Expr::Conditional { condition: Box::new(expr), then: Box::new(then), otherwise: Box::new(otherwise) };
        }
        self.depth = depth;
        Ok(expr)
    }

    fn test(&mut self, input: Expr, negated: bool) -> Result<Expr, TwigError> {
        let mut name = self.name().ok_or_else(|| self.error("expected a test name".into()))?;
        if let Some((_, second)) = TWO_WORD_TESTS.iter().find(|(first, _)| *first == name)
            && self.peek() == Some(&Token::Name(second.to_string()))
        {
            self.next += 1;
            name = format!("{name} {second}");
        }
        let args = if self.peek() == Some(&Token::Punct('(')) {
            self.arguments(true)?
        } else if matches!(name.as_str(), "same as" | "divisible by") {
            vec![Arg { name: None, value: self.primary_expression()? }]
        } else {
            Vec::new()
        };
        Ok(Expr::Test { input: Box::new(input), name, args, negated })
    }

    /// `getPrimary`: a unary operator, a parenthesized expression, or a primary expression.
    fn primary(&mut self) -> Result<Expr, TwigError> {
        match self.peek().cloned() {
            Some(Token::Op(op)) if matches!(op.as_str(), "not" | "-" | "+") => {
                self.next += 1;
                let precedence = if op == "not" { 50 } else { 500 };
                let operand = self.expression(precedence)?;
                let op = match op.as_str() {
                    "not" => "not",
                    "-" => "-",
                    _ => "+",
                };
                self.postfix(Expr::Unary { op, operand: Box::new(operand) })
            }
            Some(Token::Punct('(')) => {
                self.next += 1;
                let expr = self.expression(0)?;
                self.expect(&Token::Punct(')'), "`)` closing a parenthesis")?;
                self.postfix(expr)
            }
            _ => self.primary_expression(),
        }
    }

    fn primary_expression(&mut self) -> Result<Expr, TwigError> {
        self.enter()?;
        let token = self.peek().cloned().ok_or_else(|| self.error("expected an expression".into()))?;
        self.next += 1;
        let node = match token {
            Token::Name(name) => match name.as_str() {
                "true" | "TRUE" => Expr::Bool(true),
                "false" | "FALSE" => Expr::Bool(false),
                "none" | "NONE" | "null" | "NULL" => Expr::Null,
                _ if self.peek() == Some(&Token::Punct('(')) => Expr::Call { args: self.arguments(true)?, name },
                _ => Expr::Name(name),
            },
            Token::Int(n) => Expr::Int(n),
            Token::Float(f) => Expr::Float(f),
            Token::Str(parts) => self.string(parts)?,
            // A word operator where an expression starts is a variable name.
            Token::Op(op) if op.chars().all(|c| c.is_ascii_alphabetic()) => Expr::Name(op),
            Token::Op(op) if op == "-" || op == "+" => {
                let operand = self.primary_expression()?;
                Expr::Unary { op: if op == "-" { "-" } else { "+" }, operand: Box::new(operand) }
            }
            Token::Punct('[') => self.array()?,
            Token::Punct('{') => self.hash()?,
            other => return Err(TwigError::syntax(self.at, format!("unexpected {other:?}"))),
        };
        let node = self.postfix(node)?;
        self.depth -= 1;
        Ok(node)
    }

    fn string(&mut self, parts: Vec<StrPart>) -> Result<Expr, TwigError> {
        if let Some(text) = plain_text(&parts) {
            return Ok(Expr::Str(text));
        }
        let mut exprs = Vec::new();
        for part in parts {
            match part {
                StrPart::Text(text) => exprs.push(Expr::Str(text)),
                StrPart::Code(code) => {
                    let mut inner = Tokens { tokens: code, at: self.at, next: 0, depth: self.depth };
                    let expr = inner.expression(0)?;
                    inner.done()?;
                    exprs.push(expr);
                }
            }
        }
        Ok(Expr::Interpolated(exprs))
    }

    fn array(&mut self) -> Result<Expr, TwigError> {
        let mut items = Vec::new();
        while !self.eat(&Token::Punct(']')) {
            if !items.is_empty() {
                self.expect(&Token::Punct(','), "`,` between array elements")?;
                if self.eat(&Token::Punct(']')) {
                    break;
                }
            }
            items.push(self.expression(0)?);
        }
        Ok(Expr::Array(items))
    }

    fn hash(&mut self) -> Result<Expr, TwigError> {
        let mut entries = Vec::new();
        while !self.eat(&Token::Punct('}')) {
            if !entries.is_empty() {
                self.expect(&Token::Punct(','), "`,` between hash entries")?;
                if self.eat(&Token::Punct('}')) {
                    break;
                }
            }
            let key = match self.peek().cloned() {
                Some(Token::Name(name)) => {
                    self.next += 1;
                    // `{a}` is `{a: a}`.
                    if matches!(self.peek(), Some(Token::Punct(',' | '}'))) {
                        entries.push((Expr::Str(name.clone()), Expr::Name(name)));
                        continue;
                    }
                    Expr::Str(name)
                }
                Some(Token::Str(parts)) => {
                    self.next += 1;
                    Expr::Str(plain_text(&parts).ok_or_else(|| self.error("a hash key cannot interpolate".into()))?)
                }
                Some(Token::Int(n)) => {
                    self.next += 1;
                    Expr::Int(n)
                }
                Some(Token::Float(f)) => {
                    self.next += 1;
                    Expr::Float(f)
                }
                Some(Token::Punct('(')) => self.expression(0)?,
                _ => return Err(self.error("a hash key must be a quoted string, a number, a name, or an expression in parentheses".into())),
            };
            self.expect(&Token::Punct(':'), "`:` after a hash key")?;
            entries.push((key, self.expression(0)?));
        }
        Ok(Expr::Hash(entries))
    }

    fn postfix(&mut self, mut node: Expr) -> Result<Expr, TwigError> {
        let depth = self.depth;
        loop {
            // Each attribute, subscript or filter wraps the node: a level of its own.
            if matches!(self.peek(), Some(Token::Punct('.' | '[' | '|'))) {
                self.enter()?;
            }
            match self.peek() {
                Some(Token::Punct('.')) => {
                    self.next += 1;
                    let key = match self.peek().cloned() {
                        Some(Token::Name(name)) => Expr::Str(name),
                        Some(Token::Int(n)) => Expr::Int(n),
                        Some(Token::Op(op)) if op.chars().all(|c| c.is_ascii_alphabetic()) => Expr::Str(op),
                        _ => return Err(self.error("expected a name or a number after `.`".into())),
                    };
                    self.next += 1;
                    let call = if self.peek() == Some(&Token::Punct('(')) { Some(self.arguments(false)?) } else { None };
                    node = Expr::Attr { object: Box::new(node), key: Box::new(key), call };
                }
                Some(Token::Punct('[')) => {
                    self.next += 1;
                    let (start, slice) =
                        if self.peek() == Some(&Token::Punct(':')) { (Expr::Int(0), true) } else { (self.expression(0)?, false) };
                    let slice = self.eat(&Token::Punct(':')) || slice;
                    if slice {
                        let length = if self.peek() == Some(&Token::Punct(']')) { Expr::Null } else { self.expression(0)? };
                        self.expect(&Token::Punct(']'), "`]` closing a slice")?;
                        let args = vec![Arg { name: None, value: start }, Arg { name: None, value: length }];
                        node = Expr::Filter { input: Box::new(node), name: "slice".into(), args };
                    } else {
                        self.expect(&Token::Punct(']'), "`]` closing a subscript")?;
                        node = Expr::Attr { object: Box::new(node), key: Box::new(start), call: None };
                    }
                }
                Some(Token::Punct('|')) => {
                    self.next += 1;
                    let name = self.name().ok_or_else(|| self.error("expected a filter name after `|`".into()))?;
                    let args = if self.peek() == Some(&Token::Punct('(')) { self.arguments(true)? } else { Vec::new() };
                    node = Expr::Filter { input: Box::new(node), name, args };
                }
                _ => {
                    self.depth = depth;
                    return Ok(node);
                }
            }
        }
    }

    /// `( args )`, each possibly `name = value`, possibly an arrow function.
    fn arguments(&mut self, named: bool) -> Result<Vec<Arg>, TwigError> {
        self.expect(&Token::Punct('('), "`(`")?;
        let mut args = Vec::new();
        while !self.eat(&Token::Punct(')')) {
            if !args.is_empty() {
                self.expect(&Token::Punct(','), "`,` between arguments")?;
                if self.eat(&Token::Punct(')')) {
                    break;
                }
            }
            let value = self.operand(0)?;
            if named && self.eat(&Token::Op("=".into())) {
                let Expr::Name(name) = value else { return Err(self.error("an argument's name must be a name".into())) };
                let value = self.operand(0)?;
                args.push(Arg { name: Some(name), value });
            } else {
                args.push(Arg { name: None, value });
            }
        }
        Ok(args)
    }

    /// `x => …` or `(a, b) => …`, where an argument is.
    fn arrow(&mut self) -> Result<Option<Expr>, TwigError> {
        if let (Some(Token::Name(param)), Some(Token::Arrow)) = (self.peek().cloned(), self.peek_at(1)) {
            self.next += 2;
            let body = self.expression(0)?;
            return Ok(Some(Expr::Arrow { params: vec![param], body: Box::new(body) }));
        }
        if self.peek() != Some(&Token::Punct('(')) {
            return Ok(None);
        }
        let mut ahead = 1;
        let mut params = Vec::new();
        loop {
            let Some(Token::Name(param)) = self.peek_at(ahead) else { return Ok(None) };
            params.push(param.clone());
            ahead += 1;
            if self.peek_at(ahead) != Some(&Token::Punct(',')) {
                break;
            }
            ahead += 1;
        }
        if self.peek_at(ahead) != Some(&Token::Punct(')')) || self.peek_at(ahead + 1) != Some(&Token::Arrow) {
            return Ok(None);
        }
        self.next += ahead + 2;
        let body = self.expression(0)?;
        Ok(Some(Expr::Arrow { params, body: Box::new(body) }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::lex::lex;
    use super::*;

    fn expr(code: &str) -> Expr {
        let nodes = parse(lex(&format!("{{{{ {code} }}}}")).unwrap()).unwrap();
        let [Node::Print(expr)] = nodes.as_slice() else { panic!("{nodes:?}") };
        expr.clone()
    }

    fn binary(op: &str, left: Expr, right: Expr) -> Expr {
        Expr::Binary { op: op.into(), left: Box::new(left), right: Box::new(right) }
    }

    fn name(n: &str) -> Expr {
        Expr::Name(n.into())
    }

    #[test]
    fn precedence_and_associativity_follow_twig() {
        assert_eq!(expr("a ~ b ?? c"), binary("~", name("a"), binary("??", name("b"), name("c"))));
        assert_eq!(expr("a + b * c"), binary("+", name("a"), binary("*", name("b"), name("c"))));
        assert_eq!(expr("a - b - c"), binary("-", binary("-", name("a"), name("b")), name("c")));
        assert_eq!(expr("a ** b ** c"), binary("**", name("a"), binary("**", name("b"), name("c"))));
        // `not` binds tighter than `==` in Twig: `not a == b` is `(not a) == b`.
        assert_eq!(expr("not a == b"), binary("==", Expr::Unary { op: "not", operand: Box::new(name("a")) }, name("b")));
        assert!(matches!(expr("a ? b : c ? d : e"), Expr::Conditional { .. }));
        assert!(matches!(expr("a ?: b"), Expr::Conditional { .. }));
        assert!(matches!(expr("a is divisible by 3"), Expr::Test { ref name, .. } if name == "divisible by"));
        assert!(matches!(expr("a is not same as(b)"), Expr::Test { negated: true, .. }));
    }

    #[test]
    fn postfix_hashes_slices_and_arrows() {
        assert!(matches!(expr("a.b[0].c|upper"), Expr::Filter { ref name, .. } if name == "upper"));
        assert!(matches!(expr("a[1:2]"), Expr::Filter { ref name, .. } if name == "slice"));
        assert_eq!(
            expr("{a: 1, 'b': 2, (c): 3, d}"),
            Expr::Hash(vec![
                (Expr::Str("a".into()), Expr::Int(1)),
                (Expr::Str("b".into()), Expr::Int(2)),
                (name("c"), Expr::Int(3)),
                (Expr::Str("d".into()), name("d")),
            ])
        );
        let Expr::Filter { args, .. } = expr("items|map((v, k) => v ~ k)") else { panic!() };
        assert!(matches!(&args[0].value, Expr::Arrow { params, .. } if params == &["v", "k"]));
        let Expr::Filter { args, .. } = expr("items|filter(v => v > 1)") else { panic!() };
        assert!(matches!(&args[0].value, Expr::Arrow { .. }));
        assert!(matches!(expr("\"Hi #{name}!\""), Expr::Interpolated(parts) if parts.len() == 3));
    }

    #[test]
    fn tags_and_refusals() {
        let nodes = parse(lex("{% if a %}1{% elseif b %}2{% else %}3{% endif %}").unwrap()).unwrap();
        assert!(matches!(&nodes[0], Node::If { branches, otherwise: Some(_) } if branches.len() == 2));
        let nodes = parse(lex("{% for k, v in m %}{{ k }}{% else %}none{% endfor %}").unwrap()).unwrap();
        assert!(matches!(&nodes[0], Node::For { key: Some(_), otherwise: Some(_), .. }));
        let nodes = parse(lex("{% set a, b = 1, 2 %}{% set c %}x{% endset %}").unwrap()).unwrap();
        assert!(matches!(&nodes[1], Node::Capture { .. }));
        let error = parse(lex("{% include 'x' %}").unwrap()).unwrap_err();
        assert!(error.to_string().contains("the Twig tag `include`"), "{error}");
        assert!(parse(lex("{% if a %}").unwrap()).is_err());
        assert!(parse(lex(&format!("{{{{ {}1{} }}}}", "(".repeat(500), ")".repeat(500))).unwrap()).is_err());
        // Flat chains nest too, to the left: refused at the limit, never a stack overflow.
        for chain in [" + 1", " ~ 1", " and 1", "|abs", ".b", "[0]", " ? 1 : 1"] {
            let template = format!("{{{{ 1{} }}}}", chain.repeat(100_000));
            assert!(parse(lex(&template).unwrap()).is_err(), "{chain}");
        }
        let template = format!("{{{{ 1{} }}}}", " + 1".repeat(40));
        assert!(parse(lex(&template).unwrap()).is_ok(), "a long ordinary chain is fine");
    }
}
