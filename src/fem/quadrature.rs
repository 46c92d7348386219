//! Quadrature on triangles, in barycentric coordinates.

/// A quadrature point: barycentric coordinates and a weight; weights sum to 1, so
/// ∫_T g dx ≈ |T| Σ_q w_q g(λ_q).
#[derive(Debug, Clone, Copy)]
pub struct QuadraturePoint {
    pub barycentric: [f64; 3],
    pub weight: f64,
}

const fn sym3(a: f64, w: f64) -> [QuadraturePoint; 3] {
    let b = 1.0 - 2.0 * a;
    [
        QuadraturePoint {
            barycentric: [a, a, b],
            weight: w,
        },
        QuadraturePoint {
            barycentric: [a, b, a],
            weight: w,
        },
        QuadraturePoint {
            barycentric: [b, a, a],
            weight: w,
        },
    ]
}

const A1: [QuadraturePoint; 3] = sym3(0.445_948_490_915_965, 0.223_381_589_678_011);
const A2: [QuadraturePoint; 3] = sym3(0.091_576_213_509_771, 0.109_951_743_655_322);

/// Dunavant's 6-point rule, exact for polynomials of degree ≤ 4.
pub const DEGREE4: [QuadraturePoint; 6] = [A1[0], A1[1], A1[2], A2[0], A2[1], A2[2]];

const B1: [QuadraturePoint; 3] = sym3(0.470_142_064_105_115, 0.132_394_152_788_506);
const B2: [QuadraturePoint; 3] = sym3(0.101_286_507_323_456, 0.125_939_180_544_827);

/// Dunavant's 7-point rule, exact for polynomials of degree ≤ 5.
pub const DEGREE5: [QuadraturePoint; 7] = [
    QuadraturePoint {
        barycentric: [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0],
        weight: 0.225,
    },
    B1[0],
    B1[1],
    B1[2],
    B2[0],
    B2[1],
    B2[2],
];

#[cfg(test)]
mod tests {
    use super::*;

    /// ∫_T λ0^a λ1^b λ2^c dx / |T| = 2 a! b! c! / (a + b + c + 2)!
    fn exact(a: i32, b: i32, c: i32) -> f64 {
        let f = |k: i32| (1..=k).map(f64::from).product::<f64>();
        2.0 * f(a) * f(b) * f(c) / f(a + b + c + 2)
    }

    #[test]
    fn rules_are_exact_to_their_degree() {
        check(&DEGREE4, 4);
        check(&DEGREE5, 5);
    }

    fn check(rule: &[QuadraturePoint], degree: i32) {
        for a in 0..=degree {
            for b in 0..=(degree - a) {
                for c in 0..=(degree - a - b) {
                    let q: f64 = rule
                        .iter()
                        .map(|p| {
                            p.weight
                                * p.barycentric[0].powi(a)
                                * p.barycentric[1].powi(b)
                                * p.barycentric[2].powi(c)
                        })
                        .sum();
                    assert!(
                        (q - exact(a, b, c)).abs() < 1e-12,
                        "{a} {b} {c}: {q} vs {}",
                        exact(a, b, c)
                    );
                }
            }
        }
    }
}
