//! How a column's value travels: bound as a statement's parameter (and how its
//! placeholder reads), and read by position from a SQLite row (the engine's in-place
//! reads). The article row's one description (`articles::article_row!`) uses these for
//! every column, so a new column needs only a line there.

use sqlx::any::AnyArguments;
use sqlx::query::{Query, QueryAs};
use sqlx::Any;

use crate::domain::{AccessLevel, ArticleStatus};

/// A statement that takes parameters: `query` and `query_as` alike.
pub trait Binder<'q>: Sized {
    fn add<T: 'q + sqlx::Encode<'q, Any> + sqlx::Type<Any>>(self, value: T) -> Self;
}

impl<'q> Binder<'q> for Query<'q, Any, AnyArguments<'q>> {
    fn add<T: 'q + sqlx::Encode<'q, Any> + sqlx::Type<Any>>(self, value: T) -> Self {
        self.bind(value)
    }
}

impl<'q, O> Binder<'q> for QueryAs<'q, Any, O, AnyArguments<'q>> {
    fn add<T: 'q + sqlx::Encode<'q, Any> + sqlx::Type<Any>>(self, value: T) -> Self {
        self.bind(value)
    }
}

/// A value written as the `n`th parameter of a statement.
pub trait Param {
    fn bind_to<'q, B: Binder<'q>>(&'q self, statement: B) -> B;

    /// The placeholder of the `n`th parameter in an INSERT's VALUES or an UPDATE's SET.
    fn placeholder(n: usize) -> String {
        format!("${n}")
    }
}

impl Param for String {
    fn bind_to<'q, B: Binder<'q>>(&'q self, statement: B) -> B {
        statement.add(self.as_str())
    }
}

impl Param for Option<String> {
    fn bind_to<'q, B: Binder<'q>>(&'q self, statement: B) -> B {
        statement.add(self.as_deref())
    }
}

impl Param for i64 {
    fn bind_to<'q, B: Binder<'q>>(&'q self, statement: B) -> B {
        statement.add(*self)
    }
}

impl Param for Option<i64> {
    fn bind_to<'q, B: Binder<'q>>(&'q self, statement: B) -> B {
        statement.add(*self)
    }
}

impl Param for f64 {
    fn bind_to<'q, B: Binder<'q>>(&'q self, statement: B) -> B {
        statement.add(*self)
    }
}

/// How a missing f64 travels (see `Param for Option<f64>`): never a valid value of the
/// columns that use it (ratios).
const NO_F64: f64 = -1.0;

impl Param for Option<f64> {
    /// The Any driver of sqlx 0.8 sends a NULL f64 as a 4-byte float to PostgreSQL,
    /// which then refuses 8-byte values in the same statement: a missing value travels
    /// as -1 and `NULLIF` turns it back.
    fn bind_to<'q, B: Binder<'q>>(&'q self, statement: B) -> B {
        statement.add(self.unwrap_or(NO_F64))
    }

    fn placeholder(n: usize) -> String {
        format!("NULLIF(${n}, -1.0)")
    }
}

impl Param for AccessLevel {
    fn bind_to<'q, B: Binder<'q>>(&'q self, statement: B) -> B {
        statement.add(self.as_str())
    }
}

impl Param for ArticleStatus {
    fn bind_to<'q, B: Binder<'q>>(&'q self, statement: B) -> B {
        statement.add(self.as_str())
    }
}

/// A value read by position from a SQLite row.
pub trait FromSqlite: Sized {
    fn read(row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<Self>;
}

/// A text column as an owned string, its UTF-8 checked with SIMD: the body is the
/// longest text of a row, and `str::from_utf8` slows down at every accented letter
/// (with a French newsroom's text, a tenth of the instructions of a read in place).
impl FromSqlite for String {
    fn read(row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<Self> {
        let bytes = row.get_ref(column)?.as_bytes()?;
        match simdutf8::basic::from_utf8(bytes) {
            Ok(text) => Ok(text.to_owned()),
            Err(error) => Err(rusqlite::Error::FromSqlConversionFailure(
                column,
                rusqlite::types::Type::Text,
                Box::new(error),
            )),
        }
    }
}

impl FromSqlite for Option<String> {
    fn read(row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<Self> {
        match row.get_ref(column)? {
            rusqlite::types::ValueRef::Null => Ok(None),
            _ => String::read(row, column).map(Some),
        }
    }
}

macro_rules! plain_from_sqlite {
    ($($ty:ty),+) => {$(
        impl FromSqlite for $ty {
            fn read(row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<Self> {
                row.get(column)
            }
        }
    )+};
}

plain_from_sqlite!(i64, Option<i64>, f64, Option<f64>);

macro_rules! word_from_sqlite {
    ($($ty:ty),+) => {$(
        impl FromSqlite for $ty {
            fn read(row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<Self> {
                let word = String::read(row, column)?;
                <$ty>::try_from(word).map_err(|error| {
                    rusqlite::Error::FromSqlConversionFailure(
                        column,
                        rusqlite::types::Type::Text,
                        Box::new(error),
                    )
                })
            }
        }
    )+};
}

word_from_sqlite!(AccessLevel, ArticleStatus);
