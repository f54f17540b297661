// An optimizer's state in a checkpoint (core/loops/optimizer_state.hpp): LibTorch's SGD, Adam,
// AdamW, RMSprop and Adagrad as plain values that survive a checkpoint file and continue training
// bit for bit; a state that does not fit is refused with the reason and changes nothing; other
// optimizers keep LibTorch's archive.
#include <boost/test/unit_test.hpp>

#include "checkpoint_helpers.hpp"

#include <hookline/core/loops/optimizer_state.hpp>

#include <torch/nn/modules/linear.h>
#include <torch/optim.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace hookline_test_optimizer_state_tests {

using namespace hookline;
using namespace test_support;

namespace {

using Dict = c10::impl::GenericDict;

struct Net : torch::nn::Module {
  Net() {
    torch::manual_seed(3);
    l1 = register_module("l1", torch::nn::Linear(4, 3));
    l2 = register_module("l2", torch::nn::Linear(3, 2));
  }
  torch::Tensor forward(const torch::Tensor& x) { return l2(torch::tanh(l1(x))); }
  torch::nn::Linear l1{nullptr}, l2{nullptr};
};

// Two parameter groups with different learning rates.
std::vector<torch::optim::OptimizerParamGroup> groups(Net& net) {
  return {torch::optim::OptimizerParamGroup(net.l1->parameters()),
          torch::optim::OptimizerParamGroup(net.l2->parameters())};
}

using Factory = std::function<std::unique_ptr<torch::optim::Optimizer>(Net&, double lr)>;

// Each optimizer with the options that give it every kind of state.
std::vector<std::pair<std::string, Factory>> optimizers() {
  using namespace torch::optim;
  return {
      {"SGD",
       [](Net& n, double lr) {
         return std::make_unique<SGD>(groups(n), SGDOptions(lr).momentum(0.9).nesterov(true));
       }},
      {"Adam",
       [](Net& n, double lr) {
         return std::make_unique<Adam>(groups(n), AdamOptions(lr).amsgrad(true));
       }},
      {"AdamW",
       [](Net& n, double lr) {
         return std::make_unique<AdamW>(groups(n), AdamWOptions(lr).betas({0.8, 0.95}));
       }},
      {"RMSprop",
       [](Net& n, double lr) {
         return std::make_unique<RMSprop>(groups(n),
                                          RMSpropOptions(lr).momentum(0.5).centered(true));
       }},
      {"Adagrad",
       [](Net& n, double lr) {
         return std::make_unique<Adagrad>(groups(n), AdagradOptions(lr).lr_decay(0.01));
       }},
  };
}

void train(Net& net, torch::optim::Optimizer& optimizer, int steps, int seed) {
  torch::manual_seed(seed);
  for (int i = 0; i < steps; ++i) {
    const auto x = torch::randn({8, 4});
    const auto y = torch::randn({8, 2});
    optimizer.zero_grad();
    torch::mse_loss(net.forward(x), y).backward();
    optimizer.step();
  }
}

void copy_weights(Net& from, Net& to) {
  torch::NoGradGuard no_grad;
  const auto source = from.parameters();
  auto target = to.parameters();
  for (std::size_t i = 0; i < source.size(); ++i) target[i].copy_(source[i]);
}

// The state through a checkpoint file's encoding, as a resume reads it.
c10::IValue through_a_file(const c10::IValue& state) {
  Dict top(c10::StringType::get(), c10::AnyType::get());
  top.insert("optimizer", state);
  return decode_checkpoint(encode_checkpoint(top), "test.ckpt").toGenericDict().at("optimizer");
}

// A copy of a saved plain state with `change` applied to it.
c10::IValue changed(const c10::IValue& saved, const std::function<void(Dict&)>& change) {
  Dict copy = through_a_file(saved).toGenericDict();
  change(copy);
  return copy;
}

double lr_of(torch::optim::Optimizer& optimizer, std::size_t group) {
  return optimizer.param_groups().at(group).options().get_lr();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(optimizer_state)

BOOST_AUTO_TEST_CASE(each_optimizer_continues_bit_for_bit_after_a_round_trip) {
  for (const auto& [name, make] : optimizers()) {
    BOOST_TEST_CONTEXT(name) {
      Net straight;
      auto original = make(straight, 0.05);
      original->param_groups()[1].options().set_lr(0.02);  // as a scheduler would
      train(straight, *original, 3, 1);
      const c10::IValue saved = through_a_file(hookline::detail::optimizer_state(*original));
      BOOST_TEST(saved.isGenericDict());
      BOOST_TEST(saved.toGenericDict().at("type").toStringRef() == name);

      Net resumed;
      copy_weights(straight, resumed);
      auto fresh = make(resumed, 0.7);
      hookline::detail::prepare_optimizer_load(saved, *fresh, 0, "test.ckpt")();
      BOOST_TEST(lr_of(*fresh, 0) == 0.05);
      BOOST_TEST(lr_of(*fresh, 1) == 0.02);
      BOOST_TEST(fresh->state().size() == original->state().size());

      train(straight, *original, 2, 2);
      train(resumed, *fresh, 2, 2);
      BOOST_TEST(bitwise_equal(weights_of(straight), weights_of(resumed)));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_state_that_does_not_fit_is_refused_and_changes_nothing) {
  Net net;
  torch::optim::Adam adam(groups(net), torch::optim::AdamOptions(0.05));
  train(net, adam, 2, 1);
  const c10::IValue saved = through_a_file(hookline::detail::optimizer_state(adam));

  Net other;
  torch::optim::Adam live(groups(other), torch::optim::AdamOptions(0.3));
  train(other, live, 1, 4);
  const c10::IValue before = through_a_file(hookline::detail::optimizer_state(live));
  auto refused = [&](const c10::IValue& bad, torch::optim::Optimizer& target) {
    return checkpoint_error_of(
        [&] { hookline::detail::prepare_optimizer_load(bad, target, 1, "x.ckpt"); });
  };
  auto state_of = [](Dict& d, std::int64_t i) {
    return d.at("state").toGenericDict().at(i).toGenericDict();
  };
  const std::vector<std::pair<std::string, c10::IValue>> cases{
      {"'lr' is not a number", changed(saved,
                                       [](Dict& d) {
                                         d.at("param_groups")
                                             .toList()
                                             .get(0)
                                             .toGenericDict()
                                             .insert_or_assign("lr", std::string("fast"));
                                       })},
      {"'betas' is not a pair",
       changed(
           saved,
           [](Dict& d) {
             d.at("param_groups").toList().get(1).toGenericDict().insert_or_assign("betas", 0.9);
           })},
      {"'exp_avg' has shape [2, 3] but the parameter has shape [3, 4]",
       changed(saved,
               [&](Dict& d) {
                 state_of(d, 0).insert_or_assign("exp_avg", torch::zeros({2, 3}));
               })},
      {"'step' is not a count",
       changed(saved, [&](Dict& d) { state_of(d, 1).insert_or_assign("step", -4); })},
      {"'exp_avg_sq' is missing",
       changed(saved, [&](Dict& d) { (void)state_of(d, 2).erase("exp_avg_sq"); })},
      {"has state for a parameter it does not have",
       changed(saved,
               [&](Dict& d) {
                 d.at("state").toGenericDict().insert(std::int64_t{99}, state_of(d, 0));
               })},
      {"numbers its parameters out of order",
       changed(saved,
               [](Dict& d) {
                 d.at("param_groups")
                     .toList()
                     .get(1)
                     .toGenericDict()
                     .insert_or_assign("params", c10::List<std::int64_t>({0, 1}));
               })},
      {"has 1 parameter groups in the checkpoint but 2",
       changed(saved,
               [](Dict& d) {
                 auto list = d.at("param_groups").toList();
                 list.resize(1);
               })},
      {"was saved from SGD but configure_optimizers() gives Adam",
       changed(saved, [](Dict& d) { d.insert_or_assign("type", std::string("SGD")); })},
  };
  for (const auto& [expected, bad] : cases) {
    const std::string message = refused(bad, live);
    BOOST_TEST(contains(message, "checkpoint 'x.ckpt': optimizer 1 (Adam)"), message);
    BOOST_TEST(contains(message, expected), message);
    // Nothing changed: the live state saves exactly as before.
    const c10::IValue after = through_a_file(hookline::detail::optimizer_state(live));
    BOOST_TEST(lr_of(live, 0) == 0.3);
    BOOST_TEST(encode_checkpoint(after) == encode_checkpoint(before));
  }

  torch::optim::SGD sgd(groups(other), torch::optim::SGDOptions(0.1));
  const std::string wrong_type = refused(saved, sgd);
  BOOST_TEST(contains(wrong_type, "was saved from Adam but configure_optimizers() gives SGD"),
             wrong_type);
  BOOST_TEST(
      contains(refused(c10::IValue(torch::zeros({4}, torch::kByte)), live), "is not a dictionary"));
}

// An optimizer hookline has no plain form for keeps LibTorch's archive (bytes).
BOOST_AUTO_TEST_CASE(other_optimizers_keep_libtorchs_archive) {
  Net net;
  torch::optim::LBFGS lbfgs(net.parameters(), torch::optim::LBFGSOptions(0.5).history_size(3));
  const auto x = torch::randn({8, 4});
  const auto y = torch::randn({8, 2});
  auto closure = [&] {
    lbfgs.zero_grad();
    auto loss = torch::mse_loss(net.forward(x), y);
    loss.backward();
    return loss;
  };
  lbfgs.step(closure);
  const c10::IValue saved = through_a_file(hookline::detail::optimizer_state(lbfgs));
  BOOST_TEST(saved.isTensor());
  BOOST_TEST((saved.toTensor().scalar_type() == torch::kByte));

  Net other;
  torch::optim::LBFGS fresh(other.parameters(), torch::optim::LBFGSOptions(0.1));
  hookline::detail::prepare_optimizer_load(saved, fresh, 0, "x.ckpt")();
  BOOST_TEST(lr_of(fresh, 0) == 0.5);
  BOOST_TEST(fresh.state().size() == lbfgs.state().size());

  torch::optim::Adam adam(net.parameters());
  const std::string message = checkpoint_error_of([&] {
    hookline::detail::prepare_optimizer_load(hookline::detail::optimizer_state(adam), fresh, 0,
                                             "x.ckpt");
  });
  BOOST_TEST(contains(message, "is not LibTorch's optimizer archive"), message);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_optimizer_state_tests
