;; Training kernels for the tfjs wasm backend, run on its own memory, which this module
;; imports: pointers are byte offsets of tensors in that memory (lib/wasm-fused.ts).
;;
;; adadelta: one Adadelta step (torch.optim.Adadelta's arithmetic, float32) over n values
;; of one weight in a single SIMD pass, instead of ten-odd tensor ops that each read and
;; write the whole weight.
;;   s'   = rho·s + (1-rho)·g²
;;   d    = sqrt(a + eps) / sqrt(s' + eps) · g
;;   a'   = rho·a + (1-rho)·d²
;;   p'   = p - lr·d
(module
  (import "env" "memory" (memory 0))
  (func (export "adadelta")
    (param $p i32) (param $g i32) (param $s i32) (param $a i32)
    (param $pOut i32) (param $sOut i32) (param $aOut i32)
    (param $n i32) (param $rho f32) (param $eps f32) (param $lr f32)
    (local $i i32) (local $end i32) (local $o i32) (local $keep f32)
    (local $vrho v128) (local $vkeep v128) (local $veps v128) (local $vlr v128)
    (local $vg v128) (local $vs v128) (local $va v128) (local $vd v128)
    (local $fg f32) (local $fs f32) (local $fa f32) (local $fd f32)
    (local.set $keep (f32.sub (f32.const 1) (local.get $rho)))
    (local.set $vrho (f32x4.splat (local.get $rho)))
    (local.set $vkeep (f32x4.splat (local.get $keep)))
    (local.set $veps (f32x4.splat (local.get $eps)))
    (local.set $vlr (f32x4.splat (local.get $lr)))
    (local.set $end (i32.and (local.get $n) (i32.const -4)))
    ;; four values at a time
    (block $vdone
      (loop $vloop
        (br_if $vdone (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (local.set $vg (v128.load (i32.add (local.get $g) (local.get $o))))
        (local.set $va (v128.load (i32.add (local.get $a) (local.get $o))))
        (local.set $vs (f32x4.add
          (f32x4.mul (local.get $vrho) (v128.load (i32.add (local.get $s) (local.get $o))))
          (f32x4.mul (local.get $vkeep) (f32x4.mul (local.get $vg) (local.get $vg)))))
        (local.set $vd (f32x4.mul
          (f32x4.div
            (f32x4.sqrt (f32x4.add (local.get $va) (local.get $veps)))
            (f32x4.sqrt (f32x4.add (local.get $vs) (local.get $veps))))
          (local.get $vg)))
        (v128.store (i32.add (local.get $sOut) (local.get $o)) (local.get $vs))
        (v128.store (i32.add (local.get $aOut) (local.get $o))
          (f32x4.add
            (f32x4.mul (local.get $vrho) (local.get $va))
            (f32x4.mul (local.get $vkeep) (f32x4.mul (local.get $vd) (local.get $vd)))))
        (v128.store (i32.add (local.get $pOut) (local.get $o))
          (f32x4.sub
            (v128.load (i32.add (local.get $p) (local.get $o)))
            (f32x4.mul (local.get $vlr) (local.get $vd))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $vloop)))
    ;; the last n mod 4 values, one at a time, with the same float32 arithmetic
    (block $sdone
      (loop $sloop
        (br_if $sdone (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (local.set $fg (f32.load (i32.add (local.get $g) (local.get $o))))
        (local.set $fa (f32.load (i32.add (local.get $a) (local.get $o))))
        (local.set $fs (f32.add
          (f32.mul (local.get $rho) (f32.load (i32.add (local.get $s) (local.get $o))))
          (f32.mul (local.get $keep) (f32.mul (local.get $fg) (local.get $fg)))))
        (local.set $fd (f32.mul
          (f32.div
            (f32.sqrt (f32.add (local.get $fa) (local.get $eps)))
            (f32.sqrt (f32.add (local.get $fs) (local.get $eps))))
          (local.get $fg)))
        (f32.store (i32.add (local.get $sOut) (local.get $o)) (local.get $fs))
        (f32.store (i32.add (local.get $aOut) (local.get $o))
          (f32.add
            (f32.mul (local.get $rho) (local.get $fa))
            (f32.mul (local.get $keep) (f32.mul (local.get $fd) (local.get $fd)))))
        (f32.store (i32.add (local.get $pOut) (local.get $o))
          (f32.sub
            (f32.load (i32.add (local.get $p) (local.get $o)))
            (f32.mul (local.get $lr) (local.get $fd))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $sloop))));; maxpool_grad_2x2: the gradient of a 2x2, stride-2 max pooling (NHWC, even height
;; and width, channels a multiple of 4) in one pass: each output's gradient goes to the
;; first maximum of its window in scan order (as the cpu backend does), the other three
;; positions get 0, so dx needs no clearing first.
  (func (export "maxpool_grad_2x2")
    (param $x i32) (param $dy i32) (param $dx i32)
    (param $n i32) (param $h i32) (param $w i32) (param $c i32)
    (local $px i32) (local $row i32) (local $pairs i32) (local $ow i32)
    (local $r i32) (local $q i32) (local $k i32) (local $rp i32) (local $pp i32) (local $o i32) (local $gp i32)
    (local $x00 v128) (local $x01 v128) (local $x10 v128) (local $x11 v128) (local $m v128)
    (local $e0 v128) (local $e1 v128) (local $e2 v128) (local $seen v128) (local $vg v128)
    (local.set $px (i32.shl (local.get $c) (i32.const 2)))
    (local.set $row (i32.mul (local.get $w) (local.get $px)))
    (local.set $pairs (i32.mul (local.get $n) (i32.shr_u (local.get $h) (i32.const 1))))
    (local.set $ow (i32.shr_u (local.get $w) (i32.const 1)))
    (local.set $gp (local.get $dy))
    (block $rdone
      (loop $rloop
        (br_if $rdone (i32.ge_u (local.get $r) (local.get $pairs)))
        (local.set $rp (i32.mul (local.get $r) (i32.shl (local.get $row) (i32.const 1))))
        (local.set $q (i32.const 0))
        (block $qdone
          (loop $qloop
            (br_if $qdone (i32.ge_u (local.get $q) (local.get $ow)))
            (local.set $pp (i32.add (local.get $rp) (i32.mul (local.get $q) (i32.shl (local.get $px) (i32.const 1)))))
            (local.set $k (i32.const 0))
            (block $kdone
              (loop $kloop
                (br_if $kdone (i32.ge_u (local.get $k) (local.get $px)))
                (local.set $o (i32.add (local.get $pp) (local.get $k)))
                (local.set $x00 (v128.load (i32.add (local.get $x) (local.get $o))))
                (local.set $x01 (v128.load (i32.add (local.get $x) (i32.add (local.get $o) (local.get $px)))))
                (local.set $x10 (v128.load (i32.add (local.get $x) (i32.add (local.get $o) (local.get $row)))))
                (local.set $x11 (v128.load (i32.add (local.get $x) (i32.add (i32.add (local.get $o) (local.get $row)) (local.get $px)))))
                (local.set $m (f32x4.max (f32x4.max (local.get $x00) (local.get $x01)) (f32x4.max (local.get $x10) (local.get $x11))))
                (local.set $e0 (f32x4.eq (local.get $x00) (local.get $m)))
                (local.set $e1 (v128.andnot (f32x4.eq (local.get $x01) (local.get $m)) (local.get $e0)))
                (local.set $seen (v128.or (local.get $e0) (local.get $e1)))
                (local.set $e2 (v128.andnot (f32x4.eq (local.get $x10) (local.get $m)) (local.get $seen)))
                (local.set $seen (v128.or (local.get $seen) (local.get $e2)))
                (local.set $vg (v128.load (local.get $gp)))
                (local.set $gp (i32.add (local.get $gp) (i32.const 16)))
                (v128.store (i32.add (local.get $dx) (local.get $o)) (v128.and (local.get $vg) (local.get $e0)))
                (v128.store (i32.add (local.get $dx) (i32.add (local.get $o) (local.get $px))) (v128.and (local.get $vg) (local.get $e1)))
                (v128.store (i32.add (local.get $dx) (i32.add (local.get $o) (local.get $row))) (v128.and (local.get $vg) (local.get $e2)))
                (v128.store (i32.add (local.get $dx) (i32.add (i32.add (local.get $o) (local.get $row)) (local.get $px)))
                  (v128.andnot (local.get $vg) (local.get $seen)))
                (local.set $k (i32.add (local.get $k) (i32.const 16)))
                (br $kloop)))
            (local.set $q (i32.add (local.get $q) (i32.const 1)))
            (br $qloop)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rloop))))
)
