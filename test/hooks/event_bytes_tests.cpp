// What a queued async copy of a hook event keeps alive, as the async lane's byte budget counts it
// (hooks/hooks.hpp EventBytes): the event itself plus the storage of the tensors it carries.
#include <boost/test/unit_test.hpp>

#include <hookline/hooks/hooks.hpp>

#include <ATen/ops/zeros.h>

namespace hookline_test_event_bytes_tests {

using namespace hookline;

BOOST_AUTO_TEST_SUITE(event_bytes)

BOOST_AUTO_TEST_CASE(batch_and_outputs_count_their_tensors_storage) {
  const at::Tensor x = at::zeros({64, 784});                           // 200,704 bytes of float
  const at::Tensor y = at::zeros({64}, at::TensorOptions(at::kLong));  // 512 bytes
  TrainBatchEnd end;
  end.batch = Batch{{"x", x}, {"y", y}};
  end.outputs = StepOutput{{"loss", at::zeros({})}};  // 4 bytes
  BOOST_TEST(approx_bytes(end) == sizeof(TrainBatchEnd) + 200704u + 512u + 4u);

  TrainingStep step;
  step.batch = Batch{{"x", x}};
  BOOST_TEST(approx_bytes(step) == sizeof(TrainingStep) + 200704u);
}

BOOST_AUTO_TEST_CASE(events_without_tensors_count_themselves) {
  FitStart start;
  BOOST_TEST(approx_bytes(start) == sizeof(FitStart));
  TrainBatchEnd empty;  // no batch yet: nothing but the event
  BOOST_TEST(approx_bytes(empty) == sizeof(TrainBatchEnd));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_event_bytes_tests
