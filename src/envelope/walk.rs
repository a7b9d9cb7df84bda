//! One pass over a body that finds the list at `resultsPosition` and splits it into records. Every
//! other part of the body is skipped (and checked to be JSON) on the way; navigating with `RawValue`
//! maps instead passed over the body once per level, four times for `data.items`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// What one pass found at the position.
pub enum Found<'de> {
    /// Nothing at that position.
    Missing,
    /// A list: its items.
    List(Vec<&'de RawValue>),
    /// Something else (an object, a scalar): the caller looks again the slow way, to say what.
    Other,
}

/// Where the records are.
#[derive(Clone, Copy)]
pub enum Want<'p> {
    /// At this path (the root when empty).
    At(&'p [String]),
    /// The root when it is a list, else the first of these keys present.
    Auto(&'p [&'p str]),
}

/// Finds the list `want` names in `text`, checking the whole body is JSON.
pub fn find<'de>(text: &'de str, want: Want) -> Result<Found<'de>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let found = Seek(want).deserialize(&mut de)?;
    de.end()?;
    Ok(found)
}

struct Seek<'p>(Want<'p>);

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = Found<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Found<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = Found<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found<'de>, A::Error> {
        // Auto: (rank of the key among the wanted ones, what is under it); the best rank wins.
        let mut best: Option<(usize, Found<'de>)> = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let (rank, rest) = match self.0 {
                Want::At([first, rest @ ..]) if *first == key && best.is_none() => (0, Want::At(rest)),
                Want::Auto(keys) => match keys.iter().position(|k| *k == key) {
                    Some(rank) if best.as_ref().is_none_or(|(b, _)| rank < *b) => (rank, Want::At(&[])),
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                },
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            best = Some((rank, map.next_value_seed(Seek(rest))?));
        }
        Ok(match (self.0, best) {
            (Want::At([]), _) => Found::Other,
            (_, Some((_, found))) => found,
            (_, None) => Found::Missing,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Found<'de>, A::Error> {
        match self.0 {
            Want::At([]) | Want::Auto(_) => {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(256));
                while let Some(item) = seq.next_element::<&'de RawValue>()? {
                    items.push(item);
                }
                Ok(Found::List(items))
            }
            Want::At([first, rest @ ..]) => {
                let index: Option<usize> = first.parse().ok();
                let mut found = Found::Missing;
                let mut i = 0;
                loop {
                    if Some(i) == index {
                        match seq.next_element_seed(Seek(Want::At(rest)))? {
                            Some(here) => found = here,
                            None => break,
                        }
                    } else if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                    i += 1;
                }
                Ok(found)
            }
        }
    }

    fn visit_bool<E>(self, _: bool) -> Result<Found<'de>, E> {
        Ok(self.scalar())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Found<'de>, E> {
        Ok(self.scalar())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Found<'de>, E> {
        Ok(self.scalar())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Found<'de>, E> {
        Ok(self.scalar())
    }
    fn visit_str<E>(self, _: &str) -> Result<Found<'de>, E> {
        Ok(self.scalar())
    }
    fn visit_unit<E>(self) -> Result<Found<'de>, E> {
        Ok(self.scalar())
    }
}

impl Seek<'_> {
    /// A scalar where the position ends is something else than a list; before it ends, nothing.
    fn scalar<'de>(&self) -> Found<'de> {
        match self.0 {
            Want::At([]) => Found::Other,
            _ => Found::Missing,
        }
    }
}
