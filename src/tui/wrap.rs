//! Wrapping text to a width in terminal columns, so that the view knows how many rows each
//! item takes before it draws (to scroll the selected one into sight). Pure.

use unicode_width::UnicodeWidthChar;

/// `text` cut into rows of at most `width` columns: at spaces where it can, inside a word
/// longer than a row where it must. Rows after the first start with `indent` spaces (a
/// hanging indent), and the text's own newlines start new rows. Tabs count as four spaces.
pub(crate) fn wrap(text: &str, width: usize, indent: usize) -> Vec<String> {
    let width = width.max(1);
    // An indent that leaves less than half the row is dropped.
    let indent = if indent * 2 > width { 0 } else { indent };
    let mut rows = Vec::new();
    for line in text.replace('\t', "    ").split('\n') {
        let mut row = String::new();
        let mut row_width = 0;
        let limit = |first_row: bool| if first_row { width } else { width - indent };
        let start_row = |rows: &mut Vec<String>, row: &mut String, row_width: &mut usize| {
            let pad = if rows.is_empty() { 0 } else { indent };
            rows.push(format!("{}{}", " ".repeat(pad), row.trim_end()));
            row.clear();
            *row_width = 0;
        };
        for word in split_keeping_spaces(line) {
            let word_width: usize = word.chars().map(char_width).sum();
            if row_width + word_width <= limit(rows.is_empty()) {
                row.push_str(word);
                row_width += word_width;
                continue;
            }
            if word.trim().is_empty() {
                // Spaces at the end of a row are dropped, not carried over.
                start_row(&mut rows, &mut row, &mut row_width);
                continue;
            }
            if row_width > 0 {
                start_row(&mut rows, &mut row, &mut row_width);
            }
            for c in word.chars() {
                let w = char_width(c);
                if row_width + w > limit(rows.is_empty()) && row_width > 0 {
                    start_row(&mut rows, &mut row, &mut row_width);
                }
                row.push(c);
                row_width += w;
            }
        }
        start_row(&mut rows, &mut row, &mut row_width);
    }
    rows
}

fn char_width(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// Words and the runs of spaces between them, in order.
fn split_keeping_spaces(line: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_space = None;
    for (i, c) in line.char_indices() {
        let space = c == ' ';
        if in_space.is_some_and(|s| s != space) {
            parts.push(&line[start..i]);
            start = i;
        }
        in_space = Some(space);
    }
    if start < line.len() {
        parts.push(&line[start..]);
    }
    parts
}

/// Cuts `text` to `width` columns, ending in `…` when it was longer.
pub(crate) fn truncate(text: &str, width: usize) -> String {
    let total: usize = text.chars().map(char_width).sum();
    if total <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = char_width(c);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_spaces_with_a_hanging_indent() {
        assert_eq!(
            wrap("src/lib.rs:2:5 error: mismatched types", 20, 2),
            vec!["src/lib.rs:2:5", "  error: mismatched", "  types"]
        );
    }

    #[test]
    fn cuts_words_longer_than_a_row() {
        assert_eq!(wrap("abcdefghij", 4, 0), vec!["abcd", "efgh", "ij"]);
    }

    #[test]
    fn keeps_newlines_and_counts_wide_characters() {
        assert_eq!(wrap("a\nb", 10, 0), vec!["a", "b"]);
        // Each of these takes two columns.
        assert_eq!(wrap("日本語", 4, 0), vec!["日本", "語"]);
    }

    #[test]
    fn truncates_with_an_ellipsis() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
