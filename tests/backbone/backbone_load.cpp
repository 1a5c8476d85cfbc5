// Loads the converted TorchScript backbone the way core/ does (torch::jit::load)
// and checks the module contract: forward(x) -> (layer1, layer2, layer3) at strides
// 4/8/16 for any input size, classify(x) -> N x 1000, descriptive attributes.
// Usage: backbone_load BACKBONE.pt [C1,C2,C3]   (default 256,512,1024)
#include <torch/script.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

static int64_t down(int64_t n, int times) {
  for (int i = 0; i < times; i++) n = (n - 1) / 2 + 1;
  return n;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s BACKBONE.pt [C1,C2,C3]\n", argv[0]);
    return 2;
  }
  std::vector<int64_t> chans = {256, 512, 1024};
  if (argc > 2 && std::sscanf(argv[2], "%ld,%ld,%ld", &chans[0], &chans[1], &chans[2]) != 3) {
    std::fprintf(stderr, "bad channel list %s\n", argv[2]);
    return 2;
  }
  int failures = 0;
  try {
    torch::jit::Module m = torch::jit::load(argv[1], torch::kCPU);
    m.eval();
    torch::NoGradGuard no_grad;
    const int64_t sizes[][3] = {{1, 224, 224}, {2, 160, 320}};
    for (const auto &s : sizes) {
      auto x = torch::rand({s[0], 3, s[1], s[2]});
      auto out = m.forward({x});
      if (!out.isTuple() || out.toTuple()->elements().size() != 3) {
        std::fprintf(stderr, "FAIL: forward() did not return a 3-tuple\n");
        return 1;
      }
      const auto &el = out.toTuple()->elements();
      for (int i = 0; i < 3; i++) {
        auto t = el[i].toTensor();
        std::vector<int64_t> want = {s[0], chans[i], down(s[1], i + 2), down(s[2], i + 2)};
        bool ok = t.sizes().vec() == want && t.scalar_type() == torch::kFloat;
        std::printf("%ldx%ld layer%d: [%ld, %ld, %ld, %ld] %s\n", (long)s[1], (long)s[2], i + 1,
                    (long)t.size(0), (long)t.size(1), (long)t.size(2), (long)t.size(3),
                    ok ? "ok" : "MISMATCH");
        if (!ok) failures++;
      }
    }
    auto logits = m.get_method("classify")({torch::rand({1, 3, 224, 224})}).toTensor();
    bool ok = logits.dim() == 2 && logits.size(0) == 1 && logits.size(1) == 1000;
    std::printf("classify: [%ld, %ld] %s\n", (long)logits.size(0), (long)logits.size(1),
                ok ? "ok" : "MISMATCH");
    if (!ok) failures++;
    if (m.hasattr("backbone_name"))
      std::printf("backbone_name: %s\n", m.attr("backbone_name").toStringRef().c_str());
    else {
      std::fprintf(stderr, "FAIL: attribute backbone_name missing\n");
      failures++;
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "FAIL: %s\n", e.what());
    return 1;
  }
  return failures ? 1 : 0;
}
