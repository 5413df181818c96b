//! Interned strings: service names, span names and tag keys repeat across spans, so each is stored
//! once and spans hold a `u32` symbol. Symbol 0 means "absent". The table only grows; it holds names,
//! not values, so its size follows the system's vocabulary rather than its traffic. Every name of
//! every ingested span is looked up here, so the table hashes with foldhash (seeded per table), not
//! SipHash, which took a tenth of an OTLP span's ingest.

use std::sync::{Arc, RwLock, RwLockReadGuard};

use foldhash::HashMap;

/// A symbol; `0` is "absent".
pub(crate) type Symbol = u32;

#[derive(Default)]
pub(crate) struct Table {
    ids: HashMap<Arc<str>, Symbol>,
    names: Vec<Arc<str>>,
}

impl Table {
    /// The string behind a symbol; `None` for 0 or unknown symbols.
    pub(crate) fn name(&self, symbol: Symbol) -> Option<&str> {
        let index = symbol.checked_sub(1)?;
        self.names.get(index as usize).map(|name| &**name)
    }

    /// The symbol of an optional name: 0 for `None`; `None` when the name is not interned.
    pub(crate) fn lookup(&self, name: Option<&str>) -> Option<Symbol> {
        match name {
            Some(name) => self.get(name),
            None => Some(0),
        }
    }

    /// The symbol of an already interned string.
    pub(crate) fn get(&self, name: &str) -> Option<Symbol> {
        self.ids.get(name).copied()
    }
}

/// A concurrent interner: lookups take a shared lock; only new names take the exclusive one.
#[derive(Default)]
pub(crate) struct Symbols {
    table: RwLock<Table>,
}

impl Symbols {
    /// Interns `name`, returning its symbol (never 0).
    pub(crate) fn intern(&self, name: &str) -> Symbol {
        if let Some(symbol) = self.read().get(name) {
            return symbol;
        }
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        if let Some(symbol) = table.get(name) {
            return symbol;
        }
        let name: Arc<str> = Arc::from(name);
        table.names.push(name.clone());
        let symbol = table.names.len() as Symbol;
        table.ids.insert(name, symbol);
        symbol
    }

    /// Interns every name not yet known, taking the exclusive lock only if one is new.
    pub(crate) fn intern_all<'a>(&self, names: impl Iterator<Item = &'a str>) {
        let missing: Vec<&str> = {
            let table = self.read();
            names.filter(|name| table.get(name).is_none()).collect()
        };
        for name in missing {
            self.intern(name);
        }
    }

    /// A read view for resolving many symbols at once.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_zero_is_absent() {
        let symbols = Symbols::default();
        let a = symbols.intern("frontend");
        assert_eq!(symbols.intern("frontend"), a);
        assert_ne!(symbols.intern("backend"), a);
        assert_eq!(symbols.read().name(a), Some("frontend"));
        assert_eq!(symbols.read().name(0), None);
        assert_eq!(symbols.read().lookup(None), Some(0));
        assert_eq!(symbols.read().lookup(Some("x")), None);
        symbols.intern_all(["x", "frontend"].into_iter());
        assert_eq!(symbols.read().lookup(Some("x")), Some(symbols.intern("x")));
    }
}
