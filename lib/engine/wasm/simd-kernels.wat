;; Training kernels for the tfjs wasm backend, run on its own memory, which this module
;; imports: pointers are byte offsets of tensors in that memory (lib/engine/wasm/simd-kernels.ts).
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
        (br $sloop))));; maxpool_grad_2x2: the gradient of a 2x2, stride-2, valid max pooling (NHWC) in one
;; pass: each output's gradient goes to the first maximum of its window in scan order (as
;; the cpu backend does), the other three positions get 0, so dx needs no clearing first,
;; except for an odd side's last row or column, which no window covers (the caller clears
;; dx then). Four channels at a time, the last C mod 4 one at a time.
  (func (export "maxpool_grad_2x2")
    (param $x i32) (param $dy i32) (param $dx i32)
    (param $n i32) (param $h i32) (param $w i32) (param $c i32)
    (local $px i32) (local $row i32) (local $pairs i32) (local $ow i32) (local $oh i32)
    (local $r i32) (local $q i32) (local $k i32) (local $rp i32) (local $pp i32) (local $o i32) (local $gp i32)
    (local $x00 v128) (local $x01 v128) (local $x10 v128) (local $x11 v128) (local $m v128)
    (local $e0 v128) (local $e1 v128) (local $e2 v128) (local $seen v128) (local $vg v128)
    (local $vecEnd i32) (local $f00 f32) (local $f01 f32) (local $f10 f32) (local $f11 f32) (local $fm f32) (local $fg f32)
    (local $b0 i32) (local $b1 i32) (local $b2 i32)
    (local.set $px (i32.shl (local.get $c) (i32.const 2)))
    (local.set $vecEnd (i32.shl (i32.and (local.get $c) (i32.const -4)) (i32.const 2)))
    (local.set $row (i32.mul (local.get $w) (local.get $px)))
    (local.set $oh (i32.shr_u (local.get $h) (i32.const 1)))
    (local.set $pairs (i32.mul (local.get $n) (local.get $oh)))
    (local.set $ow (i32.shr_u (local.get $w) (i32.const 1)))
    (local.set $gp (local.get $dy))
    (block $rdone
      (loop $rloop
        (br_if $rdone (i32.ge_u (local.get $r) (local.get $pairs)))
        ;; output row r: image r / oh, its input rows 2·(r mod oh) and the next
        (local.set $rp (i32.mul
          (i32.add (i32.mul (i32.div_u (local.get $r) (local.get $oh)) (local.get $h))
            (i32.shl (i32.rem_u (local.get $r) (local.get $oh)) (i32.const 1)))
          (local.get $row)))
        (local.set $q (i32.const 0))
        (block $qdone
          (loop $qloop
            (br_if $qdone (i32.ge_u (local.get $q) (local.get $ow)))
            (local.set $pp (i32.add (local.get $rp) (i32.mul (local.get $q) (i32.shl (local.get $px) (i32.const 1)))))
            (local.set $k (i32.const 0))
            (block $kdone
              (loop $kloop
                (br_if $kdone (i32.ge_u (local.get $k) (local.get $vecEnd)))
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
            (block $tdone
              (loop $tloop
                (br_if $tdone (i32.ge_u (local.get $k) (local.get $px)))
                (local.set $o (i32.add (local.get $pp) (local.get $k)))
                (local.set $f00 (f32.load (i32.add (local.get $x) (local.get $o))))
                (local.set $f01 (f32.load (i32.add (local.get $x) (i32.add (local.get $o) (local.get $px)))))
                (local.set $f10 (f32.load (i32.add (local.get $x) (i32.add (local.get $o) (local.get $row)))))
                (local.set $f11 (f32.load (i32.add (local.get $x) (i32.add (i32.add (local.get $o) (local.get $row)) (local.get $px)))))
                (local.set $fm (f32.max (f32.max (local.get $f00) (local.get $f01)) (f32.max (local.get $f10) (local.get $f11))))
                (local.set $b0 (f32.eq (local.get $f00) (local.get $fm)))
                (local.set $b1 (i32.and (f32.eq (local.get $f01) (local.get $fm)) (i32.eqz (local.get $b0))))
                (local.set $b2 (i32.and (f32.eq (local.get $f10) (local.get $fm)) (i32.eqz (i32.or (local.get $b0) (local.get $b1)))))
                (local.set $fg (f32.load (local.get $gp)))
                (local.set $gp (i32.add (local.get $gp) (i32.const 4)))
                (f32.store (i32.add (local.get $dx) (local.get $o)) (select (local.get $fg) (f32.const 0) (local.get $b0)))
                (f32.store (i32.add (local.get $dx) (i32.add (local.get $o) (local.get $px))) (select (local.get $fg) (f32.const 0) (local.get $b1)))
                (f32.store (i32.add (local.get $dx) (i32.add (local.get $o) (local.get $row))) (select (local.get $fg) (f32.const 0) (local.get $b2)))
                (f32.store (i32.add (local.get $dx) (i32.add (i32.add (local.get $o) (local.get $row)) (local.get $px)))
                  (select (f32.const 0) (local.get $fg) (i32.or (i32.or (local.get $b0) (local.get $b1)) (local.get $b2))))
                (local.set $k (i32.add (local.get $k) (i32.const 4)))
                (br $tloop)))
            (local.set $q (i32.add (local.get $q) (i32.const 1)))
            (br $qloop)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rloop))))

;; channel_sums: per-channel sums over the rows of two channels-last tensors a and b
;; (rows × C values each), each shifted by a per-channel value (sa, sb: C values), in
;; float64: acc[c] = Σ (a − sa), acc[C + c] = Σ (a − sa)·(b − sb) (the product in float32).
;; Batch norm's statistics (a = b = x, shifted by x's first row: the shifted-data algorithm,
;; no cancellation when the mean is large against the spread) and its gradient's (a = dy
;; unshifted, b = x shifted by the mean: Σdy, Σdy·(x − mean)). Four channels at a time, the
;; last C mod 4 one at a time.
  (func (export "channel_sums")
    (param $a i32) (param $b i32) (param $sa i32) (param $sb i32) (param $rows i32) (param $C i32) (param $acc i32)
    (local $r i32) (local $c i32) (local $c4 i32) (local $stride i32) (local $o i32)
    (local $s i32) (local $q i32) (local $va v128) (local $vp v128) (local $fa f32)
    ;; zero the 2·C accumulators
    (local.set $c (i32.const 0))
    (block $zdone
      (loop $zloop
        (br_if $zdone (i32.ge_u (local.get $c) (i32.shl (local.get $C) (i32.const 1))))
        (f64.store (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))) (f64.const 0))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $zloop)))
    (local.set $c4 (i32.and (local.get $C) (i32.const -4)))
    (local.set $stride (i32.shl (local.get $C) (i32.const 2)))
    (block $rdone
      (loop $rloop
        (br_if $rdone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $c (i32.const 0))
        (block $vdone
          (loop $vloop
            (br_if $vdone (i32.ge_u (local.get $c) (local.get $c4)))
            (local.set $o (i32.shl (local.get $c) (i32.const 2)))
            (local.set $va (f32x4.sub (v128.load (i32.add (local.get $a) (local.get $o))) (v128.load (i32.add (local.get $sa) (local.get $o)))))
            (local.set $vp (f32x4.mul (local.get $va)
              (f32x4.sub (v128.load (i32.add (local.get $b) (local.get $o))) (v128.load (i32.add (local.get $sb) (local.get $o))))))
            (local.set $s (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))
            (local.set $q (i32.add (local.get $s) (i32.shl (local.get $C) (i32.const 3))))
            (v128.store (local.get $s)
              (f64x2.add (v128.load (local.get $s)) (f64x2.promote_low_f32x4 (local.get $va))))
            (v128.store offset=16 (local.get $s)
              (f64x2.add (v128.load offset=16 (local.get $s))
                (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $va) (local.get $va)))))
            (v128.store (local.get $q)
              (f64x2.add (v128.load (local.get $q)) (f64x2.promote_low_f32x4 (local.get $vp))))
            (v128.store offset=16 (local.get $q)
              (f64x2.add (v128.load offset=16 (local.get $q))
                (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $vp) (local.get $vp)))))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $vloop)))
        (block $sdone
          (loop $sloop
            (br_if $sdone (i32.ge_u (local.get $c) (local.get $C)))
            (local.set $o (i32.shl (local.get $c) (i32.const 2)))
            (local.set $fa (f32.sub (f32.load (i32.add (local.get $a) (local.get $o))) (f32.load (i32.add (local.get $sa) (local.get $o)))))
            (local.set $s (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))
            (local.set $q (i32.add (local.get $s) (i32.shl (local.get $C) (i32.const 3))))
            (f64.store (local.get $s) (f64.add (f64.load (local.get $s)) (f64.promote_f32 (local.get $fa))))
            (f64.store (local.get $q) (f64.add (f64.load (local.get $q))
              (f64.promote_f32 (f32.mul (local.get $fa)
                (f32.sub (f32.load (i32.add (local.get $b) (local.get $o))) (f32.load (i32.add (local.get $sb) (local.get $o))))))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $sloop)))
        (local.set $a (i32.add (local.get $a) (local.get $stride)))
        (local.set $b (i32.add (local.get $b) (local.get $stride)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rloop))))

;; channel_affine: out = a·p[c] + (b − sb[c])·q[c] + r[c] per channel over rows × C values
;; (float32). Batch norm's forward (b = x shifted by the mean, q = γ·invStd, r = β, p = 0)
;; and its input gradient (a = dy, b = x shifted by the mean, and the per-channel k, u, w
;; of lib/engine/batch-norm.ts): centring first keeps the precision when the mean is large.
  (func (export "channel_affine")
    (param $a i32) (param $b i32) (param $out i32) (param $rows i32) (param $C i32)
    (param $p i32) (param $q i32) (param $rr i32) (param $sb i32)
    (local $r i32) (local $c i32) (local $c4 i32) (local $stride i32) (local $o i32)
    (local.set $c4 (i32.and (local.get $C) (i32.const -4)))
    (local.set $stride (i32.shl (local.get $C) (i32.const 2)))
    (block $rdone
      (loop $rloop
        (br_if $rdone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $c (i32.const 0))
        (block $vdone
          (loop $vloop
            (br_if $vdone (i32.ge_u (local.get $c) (local.get $c4)))
            (local.set $o (i32.shl (local.get $c) (i32.const 2)))
            (v128.store (i32.add (local.get $out) (local.get $o))
              (f32x4.add
                (f32x4.add
                  (f32x4.mul (v128.load (i32.add (local.get $a) (local.get $o))) (v128.load (i32.add (local.get $p) (local.get $o))))
                  (f32x4.mul
                    (f32x4.sub (v128.load (i32.add (local.get $b) (local.get $o))) (v128.load (i32.add (local.get $sb) (local.get $o))))
                    (v128.load (i32.add (local.get $q) (local.get $o)))))
                (v128.load (i32.add (local.get $rr) (local.get $o)))))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $vloop)))
        (block $sdone
          (loop $sloop
            (br_if $sdone (i32.ge_u (local.get $c) (local.get $C)))
            (local.set $o (i32.shl (local.get $c) (i32.const 2)))
            (f32.store (i32.add (local.get $out) (local.get $o))
              (f32.add
                (f32.add
                  (f32.mul (f32.load (i32.add (local.get $a) (local.get $o))) (f32.load (i32.add (local.get $p) (local.get $o))))
                  (f32.mul
                    (f32.sub (f32.load (i32.add (local.get $b) (local.get $o))) (f32.load (i32.add (local.get $sb) (local.get $o))))
                    (f32.load (i32.add (local.get $q) (local.get $o)))))
                (f32.load (i32.add (local.get $rr) (local.get $o)))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $sloop)))
        (local.set $a (i32.add (local.get $a) (local.get $stride)))
        (local.set $b (i32.add (local.get $b) (local.get $stride)))
        (local.set $out (i32.add (local.get $out) (local.get $stride)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rloop))))
;; dropout_mask: n values of a scaled dropout mask: keep (1/(1−rate)) where a mulberry32
;; draw is at or above the threshold (rate·2³²), else 0. mulberry32's state is a counter
;; advanced by 0x6d2b79f5 per draw, so four lanes starting at seed + 1..4 steps and
;; advancing four steps at a time give exactly the one-at-a-time stream (lib/engine/dropout.ts).
  (func (export "dropout_mask")
    (param $out i32) (param $n i32) (param $seed i32) (param $threshold i32) (param $keep f32)
    (local $i i32) (local $end i32) (local $vs v128) (local $t v128) (local $vth v128) (local $vkeep v128)
    (local $s i32) (local $u i32)
    (local.set $vs (i32x4.add (i32x4.splat (local.get $seed))
      (v128.const i32x4 0x6d2b79f5 0xda56f3ea 0x47826ddf 0xb4ade7d4)))
    (local.set $vth (i32x4.splat (local.get $threshold)))
    (local.set $vkeep (f32x4.splat (local.get $keep)))
    (local.set $end (i32.and (local.get $n) (i32.const -4)))
    (block $vdone
      (loop $vloop
        (br_if $vdone (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $t (local.get $vs))
        (local.set $t (i32x4.mul (v128.xor (local.get $t) (i32x4.shr_u (local.get $t) (i32.const 15)))
          (v128.or (local.get $t) (i32x4.splat (i32.const 1)))))
        (local.set $t (v128.xor (local.get $t)
          (i32x4.add (local.get $t) (i32x4.mul (v128.xor (local.get $t) (i32x4.shr_u (local.get $t) (i32.const 7)))
            (v128.or (local.get $t) (i32x4.splat (i32.const 61)))))))
        (local.set $t (v128.xor (local.get $t) (i32x4.shr_u (local.get $t) (i32.const 14))))
        (v128.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
          (v128.and (i32x4.ge_u (local.get $t) (local.get $vth)) (local.get $vkeep)))
        (local.set $vs (i32x4.add (local.get $vs) (i32x4.splat (i32.const 0xb4ade7d4))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $vloop)))
    ;; the last n mod 4: the next draws of the same stream
    (local.set $s (i32x4.extract_lane 0 (local.get $vs)))
    (block $sdone
      (loop $sloop
        (br_if $sdone (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $u (local.get $s))
        (local.set $u (i32.mul (i32.xor (local.get $u) (i32.shr_u (local.get $u) (i32.const 15))) (i32.or (local.get $u) (i32.const 1))))
        (local.set $u (i32.xor (local.get $u)
          (i32.add (local.get $u) (i32.mul (i32.xor (local.get $u) (i32.shr_u (local.get $u) (i32.const 7))) (i32.or (local.get $u) (i32.const 61))))))
        (local.set $u (i32.xor (local.get $u) (i32.shr_u (local.get $u) (i32.const 14))))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
          (select (local.get $keep) (f32.const 0) (i32.ge_u (local.get $u) (local.get $threshold))))
        (local.set $s (i32.add (local.get $s) (i32.const 0x6d2b79f5)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $sloop))))
;; conv_filter_grad: the filter gradient of a valid, stride-1 convolution (NHWC),
;;   dw[a, t, j] += Σ over images, y, x of  x[img, y + a, x, t] · dy[img, y, x, j]
;; where t runs over kw·ci values: for one row a of the filter, the kw pixels a filter
;; position covers lie next to each other in x, so (b, c) flattens to t = b·ci + c.
;; dw is a scratch of kh·L4 rows (L4 = kw·ci rounded up to 4) by `cols` (co rounded up
;; to 8), which the caller zeroes and then copies out: blocks of 4 rows by 8 (or, for a
;; last block of at most 4 columns, 4) columns are summed in registers over all the
;; image's positions, as in a matrix product's micro-kernel, instead of im2col + GEMM's
;; copies. Rows past L and columns past co read neighbouring values (at most 12 bytes
;; past x or dy, which the caller checks lie inside the memory) and land in the padding.
;; Images are the outer loop, so each image's x and dy stay in cache across the blocks.
  (func (export "conv_filter_grad")
    (param $x i32) (param $dy i32) (param $dw i32)
    (param $n i32) (param $h i32) (param $w i32) (param $ci i32)
    (param $oh i32) (param $ow i32) (param $co i32) (param $kh i32) (param $kw i32) (param $cols i32)
    (local $img i32) (local $a i32) (local $t i32) (local $j i32) (local $y i32)
    (local $L i32) (local $L4 i32) (local $xStep i32) (local $xRowStep i32) (local $dyStep i32)
    (local $xImg i32) (local $dyImg i32) (local $xBlock i32) (local $xRow i32) (local $xp i32)
    (local $dyp i32) (local $rowEnd i32) (local $dwp i32) (local $colBytes i32) (local $dyRow i32)
    (local $v0 v128) (local $v1 v128) (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local.set $L (i32.mul (local.get $kw) (local.get $ci)))
    (local.set $L4 (i32.and (i32.add (local.get $L) (i32.const 3)) (i32.const -4)))
    (local.set $xStep (i32.shl (local.get $ci) (i32.const 2)))
    (local.set $xRowStep (i32.shl (i32.mul (local.get $w) (local.get $ci)) (i32.const 2)))
    (local.set $dyStep (i32.shl (local.get $co) (i32.const 2)))
    (local.set $colBytes (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $img (i32.const 0))
    (block $imgDone (loop $imgLoop
      (br_if $imgDone (i32.ge_u (local.get $img) (local.get $n)))
      (local.set $xImg (i32.add (local.get $x)
        (i32.shl (i32.mul (i32.mul (local.get $img) (local.get $h)) (i32.mul (local.get $w) (local.get $ci))) (i32.const 2))))
      (local.set $dyImg (i32.add (local.get $dy)
        (i32.shl (i32.mul (i32.mul (local.get $img) (local.get $oh)) (i32.mul (local.get $ow) (local.get $co))) (i32.const 2))))
      (local.set $a (i32.const 0))
      (block $aDone (loop $aLoop
        (br_if $aDone (i32.ge_u (local.get $a) (local.get $kh)))
        (local.set $t (i32.const 0))
        (block $tDone (loop $tLoop
          (br_if $tDone (i32.ge_u (local.get $t) (local.get $L)))
          (local.set $xBlock (i32.add (local.get $xImg)
            (i32.add (i32.mul (local.get $a) (local.get $xRowStep)) (i32.shl (local.get $t) (i32.const 2)))))
          (local.set $j (i32.const 0))
          (block $jDone (loop $jLoop
            (br_if $jDone (i32.ge_u (local.get $j) (local.get $co)))
            (local.set $dwp (i32.add (local.get $dw) (i32.shl
              (i32.add (i32.mul (i32.add (i32.mul (local.get $a) (local.get $L4)) (local.get $t)) (local.get $cols)) (local.get $j))
              (i32.const 2))))
            (local.set $dyRow (i32.add (local.get $dyImg) (i32.shl (local.get $j) (i32.const 2))))
            (local.set $xRow (local.get $xBlock))
            (if (i32.gt_u (i32.sub (local.get $co) (local.get $j)) (i32.const 4))
              (then
                ;; 4 rows x 8 columns
                (local.set $c00 (v128.load (local.get $dwp)))
                (local.set $c01 (v128.load offset=16 (local.get $dwp)))
                (local.set $c10 (v128.load (i32.add (local.get $dwp) (local.get $colBytes))))
                (local.set $c11 (v128.load offset=16 (i32.add (local.get $dwp) (local.get $colBytes))))
                (local.set $c20 (v128.load (i32.add (local.get $dwp) (i32.shl (local.get $colBytes) (i32.const 1)))))
                (local.set $c21 (v128.load offset=16 (i32.add (local.get $dwp) (i32.shl (local.get $colBytes) (i32.const 1)))))
                (local.set $c30 (v128.load (i32.add (local.get $dwp) (i32.mul (local.get $colBytes) (i32.const 3)))))
                (local.set $c31 (v128.load offset=16 (i32.add (local.get $dwp) (i32.mul (local.get $colBytes) (i32.const 3)))))
                (local.set $y (i32.const 0))
                (block $yDone (loop $yLoop
                  (br_if $yDone (i32.ge_u (local.get $y) (local.get $oh)))
                  (local.set $xp (local.get $xRow))
                  (local.set $dyp (local.get $dyRow))
                  (local.set $rowEnd (i32.add (local.get $dyRow) (i32.mul (local.get $ow) (local.get $dyStep))))
                  (loop $xLoop
                    (local.set $v0 (v128.load (local.get $dyp)))
                    (local.set $v1 (v128.load offset=16 (local.get $dyp)))
                    (local.set $s0 (v128.load32_splat (local.get $xp)))
                    (local.set $s1 (v128.load32_splat offset=4 (local.get $xp)))
                    (local.set $s2 (v128.load32_splat offset=8 (local.get $xp)))
                    (local.set $s3 (v128.load32_splat offset=12 (local.get $xp)))
                    (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $s0) (local.get $v0))))
                    (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $s0) (local.get $v1))))
                    (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $s1) (local.get $v0))))
                    (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $s1) (local.get $v1))))
                    (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $s2) (local.get $v0))))
                    (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $s2) (local.get $v1))))
                    (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $s3) (local.get $v0))))
                    (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $s3) (local.get $v1))))
                    (local.set $xp (i32.add (local.get $xp) (local.get $xStep)))
                    (local.set $dyp (i32.add (local.get $dyp) (local.get $dyStep)))
                    (br_if $xLoop (i32.lt_u (local.get $dyp) (local.get $rowEnd))))
                  (local.set $xRow (i32.add (local.get $xRow) (local.get $xRowStep)))
                  (local.set $dyRow (local.get $rowEnd))
                  (local.set $y (i32.add (local.get $y) (i32.const 1)))
                  (br $yLoop)))
                (v128.store (local.get $dwp) (local.get $c00))
                (v128.store offset=16 (local.get $dwp) (local.get $c01))
                (v128.store (i32.add (local.get $dwp) (local.get $colBytes)) (local.get $c10))
                (v128.store offset=16 (i32.add (local.get $dwp) (local.get $colBytes)) (local.get $c11))
                (v128.store (i32.add (local.get $dwp) (i32.shl (local.get $colBytes) (i32.const 1))) (local.get $c20))
                (v128.store offset=16 (i32.add (local.get $dwp) (i32.shl (local.get $colBytes) (i32.const 1))) (local.get $c21))
                (v128.store (i32.add (local.get $dwp) (i32.mul (local.get $colBytes) (i32.const 3))) (local.get $c30))
                (v128.store offset=16 (i32.add (local.get $dwp) (i32.mul (local.get $colBytes) (i32.const 3))) (local.get $c31))
                (local.set $j (i32.add (local.get $j) (i32.const 8))))
              (else
                ;; 4 rows x the last 4 (or fewer) columns
                (local.set $c00 (v128.load (local.get $dwp)))
                (local.set $c10 (v128.load (i32.add (local.get $dwp) (local.get $colBytes))))
                (local.set $c20 (v128.load (i32.add (local.get $dwp) (i32.shl (local.get $colBytes) (i32.const 1)))))
                (local.set $c30 (v128.load (i32.add (local.get $dwp) (i32.mul (local.get $colBytes) (i32.const 3)))))
                (local.set $y (i32.const 0))
                (block $yDone4 (loop $yLoop4
                  (br_if $yDone4 (i32.ge_u (local.get $y) (local.get $oh)))
                  (local.set $xp (local.get $xRow))
                  (local.set $dyp (local.get $dyRow))
                  (local.set $rowEnd (i32.add (local.get $dyRow) (i32.mul (local.get $ow) (local.get $dyStep))))
                  (loop $xLoop4
                    (local.set $v0 (v128.load (local.get $dyp)))
                    (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (v128.load32_splat (local.get $xp)) (local.get $v0))))
                    (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (v128.load32_splat offset=4 (local.get $xp)) (local.get $v0))))
                    (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (v128.load32_splat offset=8 (local.get $xp)) (local.get $v0))))
                    (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (v128.load32_splat offset=12 (local.get $xp)) (local.get $v0))))
                    (local.set $xp (i32.add (local.get $xp) (local.get $xStep)))
                    (local.set $dyp (i32.add (local.get $dyp) (local.get $dyStep)))
                    (br_if $xLoop4 (i32.lt_u (local.get $dyp) (local.get $rowEnd))))
                  (local.set $xRow (i32.add (local.get $xRow) (local.get $xRowStep)))
                  (local.set $dyRow (local.get $rowEnd))
                  (local.set $y (i32.add (local.get $y) (i32.const 1)))
                  (br $yLoop4)))
                (v128.store (local.get $dwp) (local.get $c00))
                (v128.store (i32.add (local.get $dwp) (local.get $colBytes)) (local.get $c10))
                (v128.store (i32.add (local.get $dwp) (i32.shl (local.get $colBytes) (i32.const 1))) (local.get $c20))
                (v128.store (i32.add (local.get $dwp) (i32.mul (local.get $colBytes) (i32.const 3))) (local.get $c30))
                (local.set $j (i32.add (local.get $j) (i32.const 4)))))
            (br $jLoop)))
          (local.set $t (i32.add (local.get $t) (i32.const 4)))
          (br $tLoop)))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (br $aLoop)))
      (local.set $img (i32.add (local.get $img) (i32.const 1)))
      (br $imgLoop)))
  )
;; store_lanes: the first k (1…4) lanes of v at p: the last columns of a row that ends
;; inside a vector, whose other lanes belong to the next row.
  (func $store_lanes (param $p i32) (param $v v128) (param $k i32)
    (if (i32.ge_u (local.get $k) (i32.const 4))
      (then (v128.store (local.get $p) (local.get $v)) (return)))
    (f32.store (local.get $p) (f32x4.extract_lane 0 (local.get $v)))
    (if (i32.ge_u (local.get $k) (i32.const 2))
      (then (f32.store offset=4 (local.get $p) (f32x4.extract_lane 1 (local.get $v)))))
    (if (i32.ge_u (local.get $k) (i32.const 3))
      (then (f32.store offset=8 (local.get $p) (f32x4.extract_lane 2 (local.get $v))))))
;; conv2d_valid: a valid, stride-1 convolution (NHWC; filter [kh, kw, ci, co]),
;;   out[q, j] = Σ over a < kh, t < kw·ci of  x[pixel q's window row a, t] · w[a, t, j]
;; for every output position q (image, y, x) in order. Blocks of 4 positions by 8 (or, for
;; a last block of at most 4, 4) output channels are summed in registers, as in a matrix
;; product's micro-kernel, reading x in place: for one filter row a, a window's kw pixels
;; lie next to each other in x, so t runs over kw·ci contiguous values. A last block of
;; fewer than 4 positions repeats the last one and stores only its own. Columns past co
;; read at most 12 bytes past w (the caller checks they lie inside the memory).
  (func (export "conv2d_valid")
    (param $x i32) (param $w i32) (param $out i32)
    (param $n i32) (param $h i32) (param $wd i32) (param $ci i32)
    (param $oh i32) (param $ow i32) (param $co i32) (param $kh i32) (param $kw i32)
    (local $P i32) (local $q i32) (local $valid i32) (local $i i32) (local $L i32) (local $cb i32)
    (local $rowBytes i32) (local $wStep i32) (local $j i32) (local $a i32) (local $wp i32) (local $tEnd i32)
    (local $py i32) (local $px i32) (local $ptr i32) (local $last i32)
    (local $b0 i32) (local $b1 i32) (local $b2 i32) (local $b3 i32)
    (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $o i32)
    (local $v0 v128) (local $v1 v128) (local $s v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local.set $P (i32.mul (local.get $n) (i32.mul (local.get $oh) (local.get $ow))))
    (local.set $L (i32.mul (local.get $kw) (local.get $ci)))
    (local.set $cb (i32.shl (local.get $ci) (i32.const 2)))
    (local.set $rowBytes (i32.mul (local.get $wd) (local.get $cb)))
    (local.set $wStep (i32.shl (local.get $co) (i32.const 2)))
    ;; the window of position q starts at $ptr; ($py, $px) is q's place in its image
    (local.set $ptr (local.get $x))
    (local.set $q (i32.const 0))
    (block $qDone (loop $qLoop
      (br_if $qDone (i32.ge_u (local.get $q) (local.get $P)))
      (local.set $valid (i32.sub (local.get $P) (local.get $q)))
      (if (i32.gt_u (local.get $valid) (i32.const 4)) (then (local.set $valid (i32.const 4))))
      ;; the block's 4 window starts ($last: past `valid`, the block's last position again),
      ;; advancing ($py, $px) through rows and images to the next block's first position
      (local.set $i (i32.const 0))
      (loop $bLoop
        (if (i32.lt_u (local.get $i) (local.get $valid))
          (then
            (local.set $last (local.get $ptr))
            (local.set $px (i32.add (local.get $px) (i32.const 1)))
            (local.set $ptr (i32.add (local.get $ptr) (local.get $cb)))
            (if (i32.eq (local.get $px) (local.get $ow)) (then
              (local.set $px (i32.const 0))
              (local.set $py (i32.add (local.get $py) (i32.const 1)))
              (local.set $ptr (i32.add (local.get $ptr) (i32.mul (i32.sub (local.get $wd) (local.get $ow)) (local.get $cb))))
              (if (i32.eq (local.get $py) (local.get $oh)) (then
                (local.set $py (i32.const 0))
                (local.set $ptr (i32.add (local.get $ptr) (i32.mul (i32.sub (local.get $h) (local.get $oh)) (local.get $rowBytes))))))))))
        (if (i32.eq (local.get $i) (i32.const 0)) (then (local.set $b0 (local.get $last))))
        (if (i32.eq (local.get $i) (i32.const 1)) (then (local.set $b1 (local.get $last))))
        (if (i32.eq (local.get $i) (i32.const 2)) (then (local.set $b2 (local.get $last))))
        (if (i32.eq (local.get $i) (i32.const 3)) (then (local.set $b3 (local.get $last))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $bLoop (i32.lt_u (local.get $i) (i32.const 4))))
      (local.set $j (i32.const 0))
      (block $jDone (loop $jLoop
        (br_if $jDone (i32.ge_u (local.get $j) (local.get $co)))
        (local.set $wp (i32.add (local.get $w) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $o (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $q) (local.get $co)) (local.get $j)) (i32.const 2))))
        (if (i32.gt_u (i32.sub (local.get $co) (local.get $j)) (i32.const 4))
          (then
            ;; 4 positions x 8 channels
            (local.set $c00 (v128.const i32x4 0 0 0 0)) (local.set $c01 (v128.const i32x4 0 0 0 0))
            (local.set $c10 (v128.const i32x4 0 0 0 0)) (local.set $c11 (v128.const i32x4 0 0 0 0))
            (local.set $c20 (v128.const i32x4 0 0 0 0)) (local.set $c21 (v128.const i32x4 0 0 0 0))
            (local.set $c30 (v128.const i32x4 0 0 0 0)) (local.set $c31 (v128.const i32x4 0 0 0 0))
            (local.set $a (i32.const 0))
            (loop $aLoop
              (local.set $p0 (i32.add (local.get $b0) (i32.mul (local.get $a) (local.get $rowBytes))))
              (local.set $p1 (i32.add (local.get $b1) (i32.mul (local.get $a) (local.get $rowBytes))))
              (local.set $p2 (i32.add (local.get $b2) (i32.mul (local.get $a) (local.get $rowBytes))))
              (local.set $p3 (i32.add (local.get $b3) (i32.mul (local.get $a) (local.get $rowBytes))))
              (local.set $tEnd (i32.add (local.get $p0) (i32.shl (local.get $L) (i32.const 2))))
              (loop $tLoop
                (local.set $v0 (v128.load (local.get $wp)))
                (local.set $v1 (v128.load offset=16 (local.get $wp)))
                (local.set $s (v128.load32_splat (local.get $p0)))
                (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $s) (local.get $v0))))
                (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $s) (local.get $v1))))
                (local.set $s (v128.load32_splat (local.get $p1)))
                (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $s) (local.get $v0))))
                (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $s) (local.get $v1))))
                (local.set $s (v128.load32_splat (local.get $p2)))
                (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $s) (local.get $v0))))
                (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $s) (local.get $v1))))
                (local.set $s (v128.load32_splat (local.get $p3)))
                (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $s) (local.get $v0))))
                (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $s) (local.get $v1))))
                (local.set $wp (i32.add (local.get $wp) (local.get $wStep)))
                (local.set $p0 (i32.add (local.get $p0) (i32.const 4)))
                (local.set $p1 (i32.add (local.get $p1) (i32.const 4)))
                (local.set $p2 (i32.add (local.get $p2) (i32.const 4)))
                (local.set $p3 (i32.add (local.get $p3) (i32.const 4)))
                (br_if $tLoop (i32.lt_u (local.get $p0) (local.get $tEnd))))
              (local.set $a (i32.add (local.get $a) (i32.const 1)))
              (br_if $aLoop (i32.lt_u (local.get $a) (local.get $kh))))
            (v128.store (local.get $o) (local.get $c00))
            (call $store_lanes (i32.add (local.get $o) (i32.const 16)) (local.get $c01) (i32.sub (i32.sub (local.get $co) (local.get $j)) (i32.const 4)))
            (if (i32.gt_u (local.get $valid) (i32.const 1)) (then
              (local.set $o (i32.add (local.get $o) (local.get $wStep)))
              (v128.store (local.get $o) (local.get $c10))
              (call $store_lanes (i32.add (local.get $o) (i32.const 16)) (local.get $c11) (i32.sub (i32.sub (local.get $co) (local.get $j)) (i32.const 4)))))
            (if (i32.gt_u (local.get $valid) (i32.const 2)) (then
              (local.set $o (i32.add (local.get $o) (local.get $wStep)))
              (v128.store (local.get $o) (local.get $c20))
              (call $store_lanes (i32.add (local.get $o) (i32.const 16)) (local.get $c21) (i32.sub (i32.sub (local.get $co) (local.get $j)) (i32.const 4)))))
            (if (i32.gt_u (local.get $valid) (i32.const 3)) (then
              (local.set $o (i32.add (local.get $o) (local.get $wStep)))
              (v128.store (local.get $o) (local.get $c30))
              (call $store_lanes (i32.add (local.get $o) (i32.const 16)) (local.get $c31) (i32.sub (i32.sub (local.get $co) (local.get $j)) (i32.const 4)))))
            (local.set $j (i32.add (local.get $j) (i32.const 8))))
          (else
            ;; 4 positions x the last 4 (or fewer) channels
            (local.set $c00 (v128.const i32x4 0 0 0 0)) (local.set $c10 (v128.const i32x4 0 0 0 0))
            (local.set $c20 (v128.const i32x4 0 0 0 0)) (local.set $c30 (v128.const i32x4 0 0 0 0))
            (local.set $a (i32.const 0))
            (loop $aLoop4
              (local.set $p0 (i32.add (local.get $b0) (i32.mul (local.get $a) (local.get $rowBytes))))
              (local.set $p1 (i32.add (local.get $b1) (i32.mul (local.get $a) (local.get $rowBytes))))
              (local.set $p2 (i32.add (local.get $b2) (i32.mul (local.get $a) (local.get $rowBytes))))
              (local.set $p3 (i32.add (local.get $b3) (i32.mul (local.get $a) (local.get $rowBytes))))
              (local.set $tEnd (i32.add (local.get $p0) (i32.shl (local.get $L) (i32.const 2))))
              (loop $tLoop4
                (local.set $v0 (v128.load (local.get $wp)))
                (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (v128.load32_splat (local.get $p0)) (local.get $v0))))
                (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (v128.load32_splat (local.get $p1)) (local.get $v0))))
                (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (v128.load32_splat (local.get $p2)) (local.get $v0))))
                (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (v128.load32_splat (local.get $p3)) (local.get $v0))))
                (local.set $wp (i32.add (local.get $wp) (local.get $wStep)))
                (local.set $p0 (i32.add (local.get $p0) (i32.const 4)))
                (local.set $p1 (i32.add (local.get $p1) (i32.const 4)))
                (local.set $p2 (i32.add (local.get $p2) (i32.const 4)))
                (local.set $p3 (i32.add (local.get $p3) (i32.const 4)))
                (br_if $tLoop4 (i32.lt_u (local.get $p0) (local.get $tEnd))))
              (local.set $a (i32.add (local.get $a) (i32.const 1)))
              (br_if $aLoop4 (i32.lt_u (local.get $a) (local.get $kh))))
            (call $store_lanes (local.get $o) (local.get $c00) (i32.sub (local.get $co) (local.get $j)))
            (if (i32.gt_u (local.get $valid) (i32.const 1)) (then
              (local.set $o (i32.add (local.get $o) (local.get $wStep)))
              (call $store_lanes (local.get $o) (local.get $c10) (i32.sub (local.get $co) (local.get $j)))))
            (if (i32.gt_u (local.get $valid) (i32.const 2)) (then
              (local.set $o (i32.add (local.get $o) (local.get $wStep)))
              (call $store_lanes (local.get $o) (local.get $c20) (i32.sub (local.get $co) (local.get $j)))))
            (if (i32.gt_u (local.get $valid) (i32.const 3)) (then
              (local.set $o (i32.add (local.get $o) (local.get $wStep)))
              (call $store_lanes (local.get $o) (local.get $c30) (i32.sub (local.get $co) (local.get $j)))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))))
        (br $jLoop)))
      (local.set $q (i32.add (local.get $q) (local.get $valid)))
      (br $qLoop)))
  )
)
