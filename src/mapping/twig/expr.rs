//! Twig's expressions, read from the tokens of one tag as `Twig\ExpressionParser` reads them:
//! operator precedence and associativity, postfix attribute access, subscripts, slices and filters,
//! tests with one-word and two-word names, arrow functions, hashes with bare keys, string
//! interpolation. Nesting is held to [`MAX_NESTING`].

use super::TwigError;
use super::lex::{StrPart, Token};
use super::parse::{Arg, Expr, MAX_NESTING};

/// The tokens of one tag, read from the front.
pub(super) struct Tokens {
    tokens: Vec<Token>,
    pub(super) at: usize,
    next: usize,
    depth: usize,
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
    pub(super) fn new(tokens: Vec<Token>, at: usize) -> Tokens {
        Tokens { tokens, at, next: 0, depth: 0 }
    }

    /// Steps past the next token (one [`Tokens::peek`] looked at).
    pub(super) fn skip(&mut self) {
        self.next += 1;
    }

    pub(super) fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    pub(super) fn peek_at(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.next + ahead)
    }

    pub(super) fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == Some(token) {
            self.next += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect(&mut self, token: &Token, what: &str) -> Result<(), TwigError> {
        if self.eat(token) { Ok(()) } else { Err(self.error(format!("expected {what}"))) }
    }

    pub(super) fn error(&self, message: String) -> TwigError {
        let found = match self.peek() {
            None => "the end of the tag".to_string(),
            Some(token) => format!("{token:?}"),
        };
        TwigError::syntax(self.at, format!("{message}, found {found}"))
    }

    pub(super) fn done(&self) -> Result<(), TwigError> {
        if self.next < self.tokens.len() { Err(self.error("unexpected token".into())) } else { Ok(()) }
    }

    pub(super) fn name(&mut self) -> Option<String> {
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
    pub(super) fn assign_name(&mut self) -> Result<String, TwigError> {
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

    pub(super) fn enter(&mut self) -> Result<(), TwigError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(TwigError::syntax(self.at, format!("an expression nests deeper than {MAX_NESTING} levels")));
        }
        Ok(())
    }

    /// `parseExpression($precedence)`, with the conditional operator at precedence 0.
    pub(super) fn expression(&mut self, precedence: u32) -> Result<Expr, TwigError> {
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
    pub(super) fn operand(&mut self, precedence: u32) -> Result<Expr, TwigError> {
        match self.arrow()? {
            Some(arrow) => Ok(arrow),
            None => self.expression(precedence),
        }
    }

    pub(super) fn conditional(&mut self, mut expr: Expr) -> Result<Expr, TwigError> {
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

    pub(super) fn test(&mut self, input: Expr, negated: bool) -> Result<Expr, TwigError> {
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
    pub(super) fn primary(&mut self) -> Result<Expr, TwigError> {
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

    pub(super) fn primary_expression(&mut self) -> Result<Expr, TwigError> {
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

    pub(super) fn string(&mut self, parts: Vec<StrPart>) -> Result<Expr, TwigError> {
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

    pub(super) fn array(&mut self) -> Result<Expr, TwigError> {
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

    pub(super) fn hash(&mut self) -> Result<Expr, TwigError> {
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

    pub(super) fn postfix(&mut self, mut node: Expr) -> Result<Expr, TwigError> {
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
    pub(super) fn arguments(&mut self, named: bool) -> Result<Vec<Arg>, TwigError> {
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
    pub(super) fn arrow(&mut self) -> Result<Option<Expr>, TwigError> {
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

/// A string literal's text, when it interpolates nothing.
pub(super) fn plain_text(parts: &[StrPart]) -> Option<String> {
    match parts {
        [StrPart::Text(text)] => Some(text.clone()),
        _ => None,
    }
}
