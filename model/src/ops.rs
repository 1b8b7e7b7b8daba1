//! Operations that tch does not expose, implemented in `csrc/` on top of ATen.

use std::ffi::c_void;

use tch::{TchError, Tensor};

use crate::ffi::{self, check, handle};

/// The LLaMA feed-forward block `w2·(silu(w1·x) ⊙ w3·x)` for `x` `(…, dim)`, with `w13` the
/// stacked `[w1; w3]` `(2·hidden, dim)` and `w2` `(dim, hidden)`, as one autograd node.
///
/// Same function and gradients as [`swiglu_mlp_reference`], with less memory traffic: on CUDA the
/// activation and its gradient are one fused kernel each, the `[w1; w3]` gradient is written
/// without a concatenation, and the activation's output is not kept for the backward pass
/// (`csrc/swiglu_mlp.cpp`).
pub fn swiglu_mlp(x: &Tensor, w13: &Tensor, w2: &Tensor) -> Result<Tensor, TchError> {
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: the handles are live tensors borrowed for the call; on success `out` is a new
    // `torch::Tensor*` whose ownership passes to the returned `Tensor`.
    check(unsafe { ffi::covenant_swiglu_mlp(handle(x), handle(w13), handle(w2), &mut out) })?;
    Ok(unsafe { Tensor::from_ptr(out as *mut _) })
}

/// [`swiglu_mlp`] composed from tch ops: the definition it must match.
pub fn swiglu_mlp_reference(x: &Tensor, w13: &Tensor, w2: &Tensor) -> Result<Tensor, TchError> {
    let hidden = w2.size()[1];
    let gu = x.f_linear::<Tensor>(w13, None)?.f_split_with_sizes([hidden, hidden], -1)?;
    gu[0].f_silu()?.f_mul(&gu[1])?.f_linear::<Tensor>(w2, None)
}

/// Drops `leaf`'s gradient, returning its memory to the allocator (tch can only zero it).
pub fn clear_grad(leaf: &Tensor) -> Result<(), TchError> {
    // SAFETY: a live tensor borrowed for the call.
    check(unsafe { ffi::covenant_clear_grad(handle(leaf)) })
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind};

    use super::*;

    fn leaf(shape: &[i64], scale: f64) -> Tensor {
        (Tensor::randn(shape, (Kind::Float, Device::Cpu)) * scale).set_requires_grad(true)
    }

    /// Output and gradients of `f` for inputs `(x, w13, w2)` and output gradient `dy`.
    fn run(
        f: fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor, TchError>,
        inputs: &[Tensor; 3],
        dy: &Tensor,
    ) -> Vec<Tensor> {
        let leaves: Vec<Tensor> = inputs.iter().map(|t| t.detach().copy().set_requires_grad(true)).collect();
        let y = f(&leaves[0], &leaves[1], &leaves[2]).unwrap();
        (&y * dy).sum(Kind::Float).backward();
        let mut out = vec![y.detach()];
        out.extend(leaves.iter().map(|l| l.grad()));
        out
    }

    #[test]
    fn swiglu_mlp_matches_its_reference_in_value_and_gradients() {
        tch::manual_seed(3);
        let (dim, hidden) = (8, 12);
        let inputs = [leaf(&[2, 5, dim], 1.0), leaf(&[2 * hidden, dim], 0.5), leaf(&[dim, hidden], 0.5)];
        let dy = Tensor::randn([2, 5, dim], (Kind::Float, Device::Cpu));
        let fused = run(swiglu_mlp, &inputs, &dy);
        let reference = run(swiglu_mlp_reference, &inputs, &dy);
        for (name, (a, b)) in ["output", "d/dx", "d/dw13", "d/dw2"].iter().zip(fused.iter().zip(&reference)) {
            assert_eq!(a.size(), b.size(), "{name}");
            let diff = (a - b).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "{name} differs by {diff}");
            assert!(b.abs().max().double_value(&[]) > 0.1, "{name} is trivially small");
        }
    }

    #[test]
    fn swiglu_mlp_rejects_mismatched_weights() {
        let x = Tensor::zeros([3, 8], (Kind::Float, Device::Cpu));
        let w13 = Tensor::zeros([10, 8], (Kind::Float, Device::Cpu));
        let w2 = Tensor::zeros([8, 6], (Kind::Float, Device::Cpu));
        let err = swiglu_mlp(&x, &w13, &w2).unwrap_err();
        assert!(err.to_string().contains("w13 must be"), "{err}");
    }

    #[test]
    fn clear_grad_releases_the_gradient() {
        let w = leaf(&[4], 1.0);
        (&w * 2.0).sum(Kind::Float).backward();
        assert!(w.grad().defined());
        clear_grad(&w).unwrap();
        assert!(!w.grad().defined());
    }
}
