#include "diff.hpp"

#include <algorithm>

namespace hookline::trace_tool {

namespace {

nlohmann::json project(const Record& r, const DiffOptions& o) {
  nlohmann::json j = r.json;
  for (const auto& field : o.ignore) j.erase(field);
  return j;
}

std::string brief(const Record& r) {
  return format_text(r);
}

}  // namespace

DiffResult diff_traces(const std::vector<const Record*>& a_all, const std::string& a_name,
                       const std::vector<const Record*>& b_all, const std::string& b_name,
                       const DiffOptions& o) {
  auto keep = [&](const std::vector<const Record*>& in) {
    std::vector<const Record*> out;
    for (const Record* r : in)
      if (o.async || !r->is_call() || r->view().lane != Lane::async) out.push_back(r);
    return out;
  };
  const auto a = keep(a_all), b = keep(b_all);
  std::vector<std::string> ka, kb;  // canonical text of each record's compared fields
  for (const Record* r : a) ka.push_back(project(*r, o).dump());
  for (const Record* r : b) kb.push_back(project(*r, o).dump());

  DiffResult result;
  const std::size_t n = std::min(a.size(), b.size());
  std::size_t i = 0;
  while (i < n && ka[i] == kb[i]) ++i;
  result.compared = i;
  if (i == a.size() && i == b.size()) {
    result.report = "traces match: " + std::to_string(i) + " records compared (ignoring " +
                    std::to_string(o.ignore.size()) + " fields)\n";
    return result;
  }
  result.same = false;
  result.position = i + 1;
  std::string& out = result.report;
  auto where = [](const std::string& name, const Record* r) {
    return name + ":" + std::to_string(r->line);
  };
  out += "traces differ at record " + std::to_string(i + 1);
  if (i < a.size() && i < b.size())
    out += " (" + where(a_name, a[i]) + ", " + where(b_name, b[i]) + ")";
  out += "\n";

  // What kind of difference: a record moved, records added or missing, or a record changed.
  if (i == a.size()) {
    out += "  " + a_name + " ends here; " + b_name + " has " + std::to_string(b.size() - i) +
           " more records\n";
  } else if (i == b.size()) {
    out += "  " + b_name + " ends here; " + a_name + " has " + std::to_string(a.size() - i) +
           " more records\n";
  } else {
    auto find = [&](const std::vector<std::string>& keys, const std::string& key) {
      for (std::size_t j = i + 1; j < keys.size() && j <= i + o.window; ++j)
        if (keys[j] == key) return j;
      return std::size_t{0};
    };
    const std::size_t a_in_b = find(kb, ka[i]), b_in_a = find(ka, kb[i]);
    if (a_in_b && b_in_a) {
      out += "  reordered: " + a_name + "'s record " + std::to_string(i + 1) + " comes " +
             std::to_string(a_in_b - i) + " records later in " + b_name + ", and " + b_name +
             "'s record " + std::to_string(i + 1) + " comes " + std::to_string(b_in_a - i) +
             " records later in " + a_name + "\n";
    } else if (a_in_b) {
      out += "  " + b_name + " has " + std::to_string(a_in_b - i) + " extra record(s) here\n";
    } else if (b_in_a) {
      out += "  " + a_name + " has " + std::to_string(b_in_a - i) + " extra record(s) here\n";
    } else {
      const auto ja = project(*a[i], o), jb = project(*b[i], o);
      std::vector<std::string> fields;
      for (const auto& [k, v] : ja.items())
        if (!jb.contains(k) || jb[k] != v) fields.push_back(k);
      for (const auto& [k, v] : jb.items())
        if (!ja.contains(k)) fields.push_back(k);
      std::string list;
      for (const auto& f : fields) list += (list.empty() ? "" : ", ") + f;
      out += "  changed: " + list + "\n";
    }
  }
  const std::size_t from = i > o.context ? i - o.context : 0;
  if (from < i) out += "  before (the same in both):\n";
  for (std::size_t j = from; j < i; ++j)
    out += "    " + std::to_string(j + 1) + "  " + brief(*a[j]) + "\n";
  auto side = [&](const std::string& name, const std::vector<const Record*>& t) {
    out += "  " + name + ":\n";
    for (std::size_t j = i; j < t.size() && j < i + o.context + 1; ++j)
      out += std::string(j == i ? "  > " : "    ") + std::to_string(j + 1) + "  " + brief(*t[j]) +
             "\n";
    if (i >= t.size()) out += "    (end of trace)\n";
  };
  side(a_name, a);
  side(b_name, b);
  if (i < a.size())
    out += "  " + a_name + " record " + std::to_string(i + 1) + ": " + a[i]->text + "\n";
  if (i < b.size())
    out += "  " + b_name + " record " + std::to_string(i + 1) + ": " + b[i]->text + "\n";
  return result;
}

}  // namespace hookline::trace_tool
