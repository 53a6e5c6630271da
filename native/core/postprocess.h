// Postprocessing of one single-channel logit map: probabilities, masks at model and frame size, and
// 8-connected components with their statistics. Every value must equal what the TypeScript reference
// (src/runtime/postprocess/) computes, bit for bit: the same float64 expressions evaluated in the same
// order (hence -ffp-contract=off), V8's exp (fdlibm) rather than the C library's, and the same
// summation order for the component sums. Filtering, sorting and rounding of the components stay in
// TypeScript (one definition), which receives the raw per-component sums.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lvunet {

// fdlibm's e_exp.c as V8 ships it (base::ieee754::exp, i.e. JavaScript's Math.exp). glibc's exp
// rounds differently in the last ulp for some arguments, which would flip mask pixels that sit
// exactly at the threshold.
double fdlibmExp(double x);

// The TS sigmoid(): 1 / (1 + exp(-x)) for x >= 0, e / (1 + e) with e = exp(x) below 0, NaN -> 0,
// rounded to float32 as a Float32Array store does.
float sigmoid(float x);
void sigmoidInto(const float* logits, std::size_t n, float* out);

// Where the frame sits in the model-size map: the whole map when stretched, else the letterbox
// content rectangle (letterboxGeometry() in src/image/preprocess.ts).
struct ModelWindow {
  std::uint32_t newW, newH, ox, oy;
};

// Raw statistics of one component, in the order findComponents() numbers them (raster order of the
// first pixel). Sums are in the reference's order: per run, then runs in raster order.
struct ComponentStats {
  double area;
  double sumX;
  double sumY;
  double sumP;
  std::int32_t minX, minY, maxX, maxY;
  // Row-major index of the first pixel (contour tracing starts there).
  std::int32_t start;
};

// Reusable working memory (one per thread running at a time).
struct PostprocessScratch {
  std::vector<float> probModel;
  std::vector<std::uint32_t> x0, x1, y0, y1;
  std::vector<double> fx, gx, fy, gy;
  std::vector<double> rows[2];
  // Rows of horizontal taps for a part of a frame row (not cached: the part changes from row to row).
  std::vector<double> partial[2];
  // Per model row: the column range of pixels that are not far background (empty: lo > hi).
  std::vector<std::int32_t> nearLo, nearHi;
  std::int64_t rowIndex[2] = {-1, -1};
  std::vector<float> probRow;
  std::vector<std::int32_t> runY, runA, runB, parent;
  std::vector<double> runP;
};

struct PostprocessOutput {
  std::vector<ComponentStats> components;
  // Foreground pixels of the frame-size mask.
  std::uint64_t foreground = 0;
};

// logits (modelW x modelH) -> probabilities -> maskModel (modelW * modelH bytes, prob > threshold);
// the window's probabilities resized bilinearly to frameW x frameH -> maskFrame (frameW * frameH
// bytes) -> components of maskFrame (mean probability from the resized probabilities).
// Throws CoreError(ERR_INVALID_ARGUMENT) for inconsistent sizes or a threshold outside [0, 1].
void postprocess(const float* logits, std::uint32_t modelW, std::uint32_t modelH, const ModelWindow& window,
                 std::uint32_t frameW, std::uint32_t frameH, double threshold, std::uint8_t* maskModel,
                 std::uint8_t* maskFrame, PostprocessOutput& out, PostprocessScratch& scratch);

// COCO run-length counts of a 0/1 mask (row-major bytes, width x height) as pycocotools'
// maskApi.c rleEncode computes them: pixels in column-major (Fortran) order, alternating runs of 0s
// and 1s starting with a run of 0s (0 when the first pixel is foreground). The mask is read in
// column blocks through a small transposed copy (`block`), so the strided walk stays in cache.
void cocoRleCounts(const std::uint8_t* mask, std::uint32_t width, std::uint32_t height,
                   std::vector<std::uint32_t>& counts, std::vector<std::uint8_t>& block);

}  // namespace lvunet
