/// Greets someone.
pub fn greet(name: &str) -> String {
    format!("Hello, {name}! Everything here was already built by buildd.")
}

#[cfg(test)]
mod tests {
    #[test]
    fn greets_by_name() {
        assert!(super::greet("Ada").contains("Ada"));
    }
}
