//! Twig's parser, as its core token parsers build a template from the lexer's pieces (expressions
//! are [`super::expr`]'s): the tags `if`/`elseif`/`else`, `for` (with `else`), `set` (and its block form), `apply`, `with`,
//! `autoescape` and `do`. Anything else of Twig is refused here, by name.

use super::TwigError;
use super::expr::{Tokens, plain_text};
use super::lex::{Piece, Token};

/// How deeply expressions and tags may nest in one template.
pub(super) const MAX_NESTING: usize = 64;

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
                        tokens.skip();
                        Some(plain_text(&parts).ok_or_else(|| TwigError::syntax(at, "an autoescape strategy is a plain string"))?)
                    }
                    Some(Token::Name(word)) if word == "false" => {
                        tokens.skip();
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
