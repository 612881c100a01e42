//! Floats as PostgreSQL's input functions read them (`float4in`, `float8in`), for both ways a
//! value reaches the server: a text parameter (`params`) and a COPY field (`copy`).
//!
//! Invariants: the text reads back to the same value, the sign of zero included; NaN and the
//! infinities take PostgreSQL's spellings (`NaN`, `Infinity`, `-Infinity`), every other value
//! ryu's shortest text that reads back to it (which may use an exponent: `1e16`). Nothing is
//! allocated: the text is static or lives in the caller's [`ryu::Buffer`].

/// The text of `v` (a FLOAT's `f32` or a DOUBLE's `f64`), static or written into `buf`.
pub(super) fn float_text<F: ryu::Float + Into<f64>>(buf: &mut ryu::Buffer, v: F) -> &str {
    let wide: f64 = v.into();
    if wide.is_nan() {
        "NaN"
    } else if wide.is_infinite() {
        if wide > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        }
    } else {
        buf.format_finite(v)
    }
}

#[cfg(test)]
mod tests {
    use super::float_text;

    fn text<F: ryu::Float + Into<f64>>(v: F) -> String {
        float_text(&mut ryu::Buffer::new(), v).to_string()
    }

    #[test]
    fn special_values_take_postgres_spellings_and_others_the_shortest_text() {
        for (double, float, want) in [
            (f64::NAN, f32::NAN, "NaN"),
            (f64::INFINITY, f32::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, f32::NEG_INFINITY, "-Infinity"),
            (-0.0, -0.0, "-0.0"),
        ] {
            assert_eq!(text(double), want, "{double:?}");
            assert_eq!(text(float), want, "{float:?}");
        }
        assert_eq!(text(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(text(0.1f32 + 0.2f32), "0.3");
        assert_eq!(text(1e16), "1e16");
    }
}
