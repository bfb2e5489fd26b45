//! `vendor/sources.toml` edited in place (comments and layout kept): which
//! pin a new one takes the place of, and the file with it, checked by
//! parsing it back. `upgrade` and `upgrade --security` write through it.

use std::fmt;

use anyhow::{bail, Context, Result};
use toml_edit::{Array, DocumentMut, Item, Table};

use crate::pins::{Pins, SourcePin, PINS_FILE};

/// What is upgraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Component {
    Redis,
    Openssl,
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Component::Redis => "redis",
            Component::Openssl => "openssl",
        })
    }
}

/// Which pin of `vendor/sources.toml` the new one takes the place of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Openssl,
    /// The `[[redis]]` entry at this index (same line).
    Redis(usize),
    /// A new `[[redis]]` entry after the last one (a new line).
    NewRedisLine,
}

fn to_table(pin: &SourcePin) -> Result<Table> {
    let doc = toml_edit::ser::to_document(pin).context("rendering the new pin as TOML")?;
    let mut table = doc.as_table().clone();
    for (_, item) in table.iter_mut() {
        if let Some(arr) = item.as_array_mut() {
            layout_array(arr);
        }
    }
    Ok(table)
}

/// Long arrays one element a line, as the pins file writes them.
fn layout_array(arr: &mut Array) {
    let one_line = arr.to_string();
    if one_line.len() <= 72 {
        return;
    }
    for v in arr.iter_mut() {
        v.decor_mut().set_prefix("\n    ");
        v.decor_mut().set_suffix("");
    }
    arr.set_trailing("\n");
    arr.set_trailing_comma(true);
}

/// `text` (the pins file) with `pin` in `slot`. Keys whose value did not
/// change keep their formatting; comments are kept. The result is parsed back
/// and must hold exactly the old pins with this one change.
pub fn render_pins(
    text: &str,
    slot: Slot,
    previous: &SourcePin,
    pin: &SourcePin,
) -> Result<String> {
    let old = Pins::parse(text)?;
    let mut doc: DocumentMut = text
        .parse()
        .with_context(|| format!("{PINS_FILE} is not valid TOML"))?;
    let new_table = to_table(pin)?;
    match slot {
        Slot::NewRedisLine => {
            let redis = doc
                .get_mut("redis")
                .and_then(Item::as_array_of_tables_mut)
                .with_context(|| format!("{PINS_FILE} has no [[redis]] entries"))?;
            let mut t = new_table;
            t.decor_mut().set_prefix("\n");
            redis.push(t);
        }
        Slot::Redis(_) | Slot::Openssl => {
            let table = match slot {
                Slot::Redis(i) => doc
                    .get_mut("redis")
                    .and_then(Item::as_array_of_tables_mut)
                    .and_then(|a| a.get_mut(i)),
                _ => doc.get_mut("openssl").and_then(Item::as_table_mut),
            }
            .with_context(|| format!("{PINS_FILE} has no entry for {}", previous.id()))?;
            let before = serde_json::to_value(previous)?;
            let after = serde_json::to_value(pin)?;
            let stale: Vec<String> = table
                .iter()
                .map(|(k, _)| k.to_string())
                .filter(|k| !new_table.contains_key(k))
                .collect();
            for k in stale {
                table.remove(&k);
            }
            for (k, item) in new_table.iter() {
                if table.contains_key(k) && before.get(k) == after.get(k) {
                    continue; // unchanged: keep its layout
                }
                table.insert(k, item.clone());
            }
        }
    }
    let out = doc.to_string();

    // Parse back: every other pin unchanged, this one exactly as planned.
    let new = Pins::parse(&out).context("the rewritten pins file does not parse")?;
    let mut expect = old.clone();
    match slot {
        Slot::Openssl => expect.openssl = pin.clone(),
        Slot::Redis(i) => expect.redis[i] = pin.clone(),
        Slot::NewRedisLine => expect.redis.push(pin.clone()),
    }
    if serde_json::to_value(&new)? != serde_json::to_value(&expect)? {
        bail!(
            "rewriting {PINS_FILE} would change more than the {} pin",
            pin.id()
        );
    }
    Ok(out)
}

/// The pin alone, as it will read in the pins file.
pub fn render_pin(pin: &SourcePin, slot: Slot) -> Result<String> {
    let mut doc = DocumentMut::new();
    let t = to_table(pin)?;
    if slot == Slot::Openssl {
        doc.insert("openssl", Item::Table(t));
    } else {
        let mut a = toml_edit::ArrayOfTables::new();
        a.push(t);
        doc.insert("redis", Item::ArrayOfTables(a));
    }
    Ok(doc.to_string())
}
