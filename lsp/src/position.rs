//! Positions: rustc's 1-based line and character columns turned into LSP positions.
//!
//! rustc counts columns in Unicode scalar values (characters). LSP counts them in UTF-16 code
//! units unless client and server agree on another encoding (LSP 3.17 `positionEncoding`), so
//! a column can only be converted with the text of its line in hand: an emoji is one
//! character, two UTF-16 units and four UTF-8 bytes. This module owns that arithmetic and the
//! negotiation; it does not read files (see `convert.rs` for where line text comes from).

use tower_lsp_server::ls_types::{Position, PositionEncodingKind};

/// The unit LSP `character` offsets count in, for this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Utf8,
    Utf16,
}

impl Encoding {
    /// Picks the encoding from what the client offers in `general.positionEncodings`: UTF-8
    /// when offered, as it is the cheapest for clients that store text as UTF-8 (Neovim,
    /// Helix, Zed); otherwise UTF-16, which every client must support.
    pub(crate) fn negotiate(offered: Option<&[PositionEncodingKind]>) -> Encoding {
        match offered {
            Some(kinds) if kinds.contains(&PositionEncodingKind::UTF8) => Encoding::Utf8,
            _ => Encoding::Utf16,
        }
    }

    pub(crate) fn kind(self) -> PositionEncodingKind {
        match self {
            Encoding::Utf8 => PositionEncodingKind::UTF8,
            Encoding::Utf16 => PositionEncodingKind::UTF16,
        }
    }

    fn units(self, c: char) -> usize {
        match self {
            Encoding::Utf8 => c.len_utf8(),
            Encoding::Utf16 => c.len_utf16(),
        }
    }
}

/// The offset, in `encoding` units, of the 0-based character column `chars` in `line`.
///
/// A column past the end of the line (rustc points one past the last character for "expected
/// `;`" and the like) counts one unit per missing character, so positions stay ordered.
pub(crate) fn column(line: &str, chars: usize, encoding: Encoding) -> u32 {
    let mut units = 0usize;
    let mut seen = 0usize;
    for c in line.chars().take(chars) {
        units += encoding.units(c);
        seen += 1;
    }
    units += chars - seen;
    u32::try_from(units).unwrap_or(u32::MAX)
}

/// The LSP position of rustc's 1-based `line` and 1-based character `column`, given the text
/// of that line when it is known. Without it the column is taken as counting single-unit
/// characters, which is exact for ASCII lines.
pub(crate) fn position(
    line: usize,
    column_1: usize,
    text: Option<&str>,
    encoding: Encoding,
) -> Position {
    let chars = column_1.saturating_sub(1);
    let character = match text {
        Some(text) => column(text, chars, encoding),
        None => u32::try_from(chars).unwrap_or(u32::MAX),
    };
    Position {
        line: u32::try_from(line.saturating_sub(1)).unwrap_or(u32::MAX),
        character,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The fixture line of the end-to-end test: an emoji (1 char, 2 UTF-16 units, 4 bytes)
    // and an accented letter (1 char, 1 unit, 2 bytes) before the error.
    const LINE: &str = "    let face = \"😀é\"; let _n: u32 = \"ü\";";

    #[test]
    fn ascii_columns_are_the_same_in_every_encoding() {
        for encoding in [Encoding::Utf8, Encoding::Utf16] {
            assert_eq!(column("let x = 1;", 4, encoding), 4);
        }
    }

    #[test]
    fn an_emoji_is_two_utf16_units_and_four_utf8_bytes() {
        assert_eq!(column("😀x", 1, Encoding::Utf16), 2);
        assert_eq!(column("😀x", 1, Encoding::Utf8), 4);
        assert_eq!(column("😀x", 2, Encoding::Utf16), 3);
    }

    #[test]
    fn an_accented_letter_is_one_utf16_unit_and_two_utf8_bytes() {
        assert_eq!(column("éa", 1, Encoding::Utf16), 1);
        assert_eq!(column("éa", 1, Encoding::Utf8), 2);
        // A decomposed accent (e + U+0301) is two characters for rustc, and two units.
        assert_eq!(column("e\u{301}a", 2, Encoding::Utf16), 2);
        assert_eq!(column("e\u{301}a", 2, Encoding::Utf8), 3);
    }

    #[test]
    fn the_fixture_line_converts_as_the_e2e_test_expects() {
        // rustc reports the `"ü"` literal at columns 36..39 (1-based characters).
        let start = LINE.find("\"ü\"").unwrap();
        assert_eq!(LINE[..start].chars().count(), 35);
        let utf16 = |c| position(5, c, Some(LINE), Encoding::Utf16).character;
        let utf8 = |c| position(5, c, Some(LINE), Encoding::Utf8).character;
        assert_eq!((utf16(36), utf16(39)), (36, 39));
        assert_eq!((utf8(36), utf8(39)), (39, 43));
        assert_eq!(utf16(36) as usize, LINE[..start].encode_utf16().count());
        assert_eq!(utf8(36) as usize, start);
    }

    #[test]
    fn columns_past_the_end_of_the_line_stay_ordered() {
        assert_eq!(column("é", 3, Encoding::Utf8), 4);
        assert_eq!(column("", 2, Encoding::Utf16), 2);
    }

    #[test]
    fn positions_are_zero_based_and_survive_zero() {
        let p = position(0, 0, None, Encoding::Utf16);
        assert_eq!((p.line, p.character), (0, 0));
        let p = position(3, 7, None, Encoding::Utf16);
        assert_eq!((p.line, p.character), (2, 6));
    }

    #[test]
    fn utf8_is_chosen_when_offered_and_utf16_otherwise() {
        let offered = [PositionEncodingKind::UTF16, PositionEncodingKind::UTF8];
        assert_eq!(Encoding::negotiate(Some(&offered)), Encoding::Utf8);
        assert_eq!(
            Encoding::negotiate(Some(&[PositionEncodingKind::UTF32])),
            Encoding::Utf16
        );
        assert_eq!(Encoding::negotiate(None), Encoding::Utf16);
    }
}
