;; One Adadelta step (torch.optim.Adadelta's arithmetic, float32) over n values of one
;; weight, in a single SIMD pass over the tfjs wasm backend's own memory, which this
;; module imports: pointers are byte offsets of tensors in that memory. The same update
;; as ten-odd tensor ops, each of which reads and writes the whole weight.
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
        (br $sloop)))))
