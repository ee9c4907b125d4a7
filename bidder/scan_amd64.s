//go:build !purego

#include "textflag.h"

// func cpuid(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL subleaf+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv0() uint32
TEXT ·xgetbv0(SB), NOSPLIT, $0-4
	MOVL $0, CX
	XGETBV
	MOVL AX, ret+0(FP)
	RET

// A byte is special when it equals '"' (0x22) or '\\' (0x5c), or when it is below 0x20
// as a signed byte, which takes in both the control characters and the bytes from 0x80.

// func markSpecialAVX2(dst *uint64, src *byte, n int)
TEXT ·markSpecialAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	TESTQ CX, CX
	JZ avx2done
	MOVL $0x22222222, AX
	MOVD AX, X0
	VPBROADCASTD X0, Y0
	MOVL $0x5c5c5c5c, AX
	MOVD AX, X1
	VPBROADCASTD X1, Y1
	MOVL $0x20202020, AX
	MOVD AX, X2
	VPBROADCASTD X2, Y2

avx2loop:
	VMOVDQU (SI), Y3
	VMOVDQU 32(SI), Y4
	VPCMPEQB Y3, Y0, Y5
	VPCMPEQB Y3, Y1, Y6
	VPCMPGTB Y3, Y2, Y7
	VPOR Y5, Y6, Y5
	VPOR Y5, Y7, Y5
	VPMOVMSKB Y5, AX
	VPCMPEQB Y4, Y0, Y5
	VPCMPEQB Y4, Y1, Y6
	VPCMPGTB Y4, Y2, Y7
	VPOR Y5, Y6, Y5
	VPOR Y5, Y7, Y5
	VPMOVMSKB Y5, BX
	SHLQ $32, BX
	ORQ BX, AX
	MOVQ AX, (DI)
	ADDQ $64, SI
	ADDQ $8, DI
	DECQ CX
	JNZ avx2loop
	VZEROUPPER

avx2done:
	RET

// markSSE2 leaves in R the 16-bit mask of the special bytes at off(SI), using X0-X2 as
// markSpecialSSE2 sets them up and X3-X5 as scratch.
#define markSSE2(off, R) \
	MOVOU off(SI), X3 \
	MOVO X3, X4 \
	PCMPEQB X0, X4 \
	MOVO X3, X5 \
	PCMPEQB X1, X5 \
	POR X4, X5 \
	MOVO X2, X4 \
	PCMPGTB X3, X4 \
	POR X5, X4 \
	PMOVMSKB X4, R

// func markSpecialSSE2(dst *uint64, src *byte, n int)
TEXT ·markSpecialSSE2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	TESTQ CX, CX
	JZ sse2done
	MOVQ $0x2222222222222222, AX
	MOVQ AX, X0
	PUNPCKLQDQ X0, X0
	MOVQ $0x5c5c5c5c5c5c5c5c, AX
	MOVQ AX, X1
	PUNPCKLQDQ X1, X1
	MOVQ $0x2020202020202020, AX
	MOVQ AX, X2
	PUNPCKLQDQ X2, X2

sse2loop:
	markSSE2(0, AX)
	markSSE2(16, BX)
	markSSE2(32, DX)
	markSSE2(48, R8)
	SHLQ $16, BX
	SHLQ $32, DX
	SHLQ $48, R8
	ORQ BX, AX
	ORQ DX, AX
	ORQ R8, AX
	MOVQ AX, (DI)
	ADDQ $64, SI
	ADDQ $8, DI
	DECQ CX
	JNZ sse2loop

sse2done:
	RET
