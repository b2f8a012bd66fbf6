#include "cli/command_docs.h"

#include <map>
#include <set>
#include <utility>
#include <vector>

#include <fmt/ranges.h>

namespace shardfs::cli {
namespace {

// The subcommands a user sees, in the order they were added.
std::vector<const CLI::App*> Subcommands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* sub) { return !sub->get_group().empty(); });
}

// The options and arguments of `app` but its --help and --version, in the order added.
std::vector<const CLI::Option*> Options(const CLI::App& app) {
  const CLI::Option* help = app.get_help_ptr();
  const CLI::Option* version = app.get_version_ptr();
  return app.get_options([help, version](const CLI::Option* o) {
    return o != help && o != version && !o->get_group().empty();
  });
}

bool IsArgument(const CLI::Option& o) { return !o.nonpositional(); }
bool IsFlag(const CLI::Option& o) { return !IsArgument(o) && o.get_expected_max() == 0; }
bool IsRepeatable(const CLI::Option& o) {
  return o.get_expected_max() == CLI::detail::expected_max_vector_size;
}

// "-f, --foreground" (an option) or "mountpoint" (an argument).
std::vector<std::string> Names(const CLI::Option& o) {
  if (IsArgument(o)) return {o.get_name()};
  std::vector<std::string> names;
  for (const auto& s : o.get_snames()) names.push_back("-" + s);
  for (const auto& l : o.get_lnames()) names.push_back("--" + l);
  return names;
}

// The words of a CLI::IsMember check, which CLI11 puts in the type name: "TEXT:{start,stop}".
std::vector<std::string> Choices(const CLI::Option& o) {
  const std::string type = o.get_type_name();
  size_t open = type.find(":{");
  size_t close = type.rfind('}');
  if (open == std::string::npos || close == std::string::npos || close < open) return {};
  std::vector<std::string> words;
  std::string word;
  for (size_t i = open + 2; i <= close; ++i) {
    if (type[i] == ',' || type[i] == '}') {
      if (!word.empty()) words.push_back(word);
      word.clear();
    } else if (type[i] != ' ') {
      word += type[i];
    }
  }
  return words;
}

// "TEXT" of "TEXT:{start,stop}".
std::string ValueLabel(const CLI::Option& o) {
  std::string type = o.get_type_name();
  return type.substr(0, type.find(':'));
}

// Options whose values are local paths, which the completion completes as such.
bool TakesPath(const CLI::Option& o) {
  for (const auto& l : o.get_lnames()) {
    if (l == "config" || l == "home" || l == "data") return true;
    if (l.ends_with("-file") || l.ends_with("-dir")) return true;
  }
  return false;
}

// Text for roff: backslashes and minus signs escaped, and no line starting as a request.
std::string Roff(std::string_view text) {
  std::string out;
  bool line_start = true;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\'')) out += "\\&";
    line_start = c == '\n';
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Join(const std::vector<std::string>& words, std::string_view sep) {
  return fmt::format("{}", fmt::join(words, sep));
}

// "\fB\-v\fR, \fB\-\-verbose\fR \fITEXT\fR" for a .TP tag.
std::string ManTag(const CLI::Option& o) {
  if (IsArgument(o)) return "\\fI" + Roff(o.get_name()) + "\\fR";
  std::vector<std::string> names;
  for (const auto& n : Names(o)) names.push_back("\\fB" + Roff(n) + "\\fR");
  std::string tag = Join(names, ", ");
  if (!IsFlag(o)) tag += " \\fI" + Roff(ValueLabel(o)) + "\\fR";
  return tag;
}

// The description with what the help shows after the name: choices, default, repeats.
std::string ManText(const CLI::Option& o) {
  std::string text = o.get_description();
  if (!text.empty() && text.back() != '.') text += ".";
  std::vector<std::string> choices = Choices(o);
  if (!choices.empty()) text += " One of: " + Join(choices, ", ") + ".";
  if (!o.get_default_str().empty()) text += " Default: " + o.get_default_str() + ".";
  if (IsRepeatable(o)) text += " May be given more than once.";
  if (o.get_required() && !IsArgument(o)) text += " Required.";
  return Roff(text);
}

// An option's identity across subcommands: the same names and the same description.
std::string OptionKey(const CLI::Option& o) {
  return Join(Names(o), ",") + "\n" + o.get_description();
}

void CountOptions(const CLI::App& app, std::map<std::string, int>& counts) {
  for (const CLI::App* sub : Subcommands(app)) {
    for (const CLI::Option* o : Options(*sub)) {
      if (!IsArgument(*o)) ++counts[OptionKey(*o)];
    }
    CountOptions(*sub, counts);
  }
}

struct ManSections {
  std::string commands;
  std::string common;
  std::set<std::string> common_done;
};

void RenderCommands(const CLI::App& app, const std::string& prefix,
                    const std::set<std::string>& common, ManSections& out) {
  for (const CLI::App* sub : Subcommands(app)) {
    const std::string path = prefix + " " + sub->get_name();
    std::vector<const CLI::Option*> options = Options(*sub);
    std::string synopsis = path + " [options]";
    int arguments = 0;
    for (const CLI::Option* o : options) {
      if (!IsArgument(*o)) continue;
      ++arguments;
      std::string arg = o->get_name();
      if (IsRepeatable(*o)) arg += "...";
      synopsis += o->get_required() ? " " + arg : " [" + arg + "]";
    }
    if (!Subcommands(*sub).empty()) synopsis += " [command]";
    out.commands += ".SS \"" + Roff(synopsis) + "\"\n";
    out.commands += Roff(sub->get_description()) + "\n";
    std::vector<std::string> shared;
    for (const CLI::Option* o : options) {
      if (common.contains(OptionKey(*o))) {
        shared.push_back("\\fB" + Roff(Names(*o).back()) + "\\fR");
        if (out.common_done.insert(OptionKey(*o)).second) {
          out.common += ".TP\n" + ManTag(*o) + "\n" + ManText(*o) + "\n";
        }
        continue;
      }
      out.commands += ".TP\n" + ManTag(*o) + "\n" + ManText(*o) + "\n";
    }
    if (!shared.empty()) {
      out.commands += std::string(".PP\nAnd the common option") + (shared.size() > 1 ? "s " : " ") +
                      Join(shared, ", ") + ".\n";
    }
    if (sub->get_fallthrough() && !Options(*sub->get_parent()).empty()) {
      out.commands += ".PP\nAnd the options of \\fB" + Roff(path.substr(0, path.rfind(' '))) +
                      "\\fR, given after the argument" + (arguments > 1 ? "s" : "") + ".\n";
    }
    RenderCommands(*sub, path, common, out);
  }
}

// `text` with every `from` replaced by `to`.
std::string ReplaceAll(std::string text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// Single-quoted for bash.
std::string Quote(std::string_view words) {
  std::string out = "'";
  for (char c : words) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// What the completion knows of one subcommand path.
struct Spec {
  std::vector<std::string> opts;         // options, with -h/--help
  std::vector<std::string> takes_value;  // those of them that take a value
  // Options whose values have completions, with those: words, or "@path".
  std::vector<std::pair<std::string, std::string>> values;
};

// Appends to `specs` and `values` the case branches of `app` (at `path`) and of its
// subcommands. `parent` is the spec of the path above, whose options a fallthrough subcommand
// takes too.
void RenderSpecs(const CLI::App& app, const std::string& path, const Spec& parent,
                 std::string& specs, std::string& values) {
  Spec spec;
  std::vector<std::string> subs, args;
  for (const CLI::App* sub : Subcommands(app)) subs.push_back(sub->get_name());
  spec.opts = {"--help"};
  if (app.get_help_ptr() != nullptr && !app.get_help_ptr()->get_snames().empty()) {
    spec.opts.push_back("-h");
  }
  if (app.get_version_ptr() != nullptr) spec.opts.push_back("--version");
  bool arg_paths = false;
  for (const CLI::Option* o : Options(app)) {
    std::vector<std::string> choices = Choices(*o);
    if (IsArgument(*o)) {
      // Text arguments are paths (local or in the drive); numbers get no completion.
      if (choices.empty() && ValueLabel(*o) == "TEXT") arg_paths = true;
      args.insert(args.end(), choices.begin(), choices.end());
      continue;
    }
    std::vector<std::string> names = Names(*o);
    spec.opts.insert(spec.opts.end(), names.begin(), names.end());
    if (IsFlag(*o)) continue;
    spec.takes_value.insert(spec.takes_value.end(), names.begin(), names.end());
    std::string completion = TakesPath(*o) ? "@path" : Join(choices, " ");
    if (completion.empty()) continue;
    for (const auto& n : names) spec.values.emplace_back(n, completion);
  }
  if (app.get_fallthrough()) {
    for (const auto& o : parent.opts) {
      if (o != "--help" && o != "-h") spec.opts.push_back(o);
    }
    spec.takes_value.insert(spec.takes_value.end(), parent.takes_value.begin(),
                            parent.takes_value.end());
    spec.values.insert(spec.values.end(), parent.values.begin(), parent.values.end());
  }
  if (arg_paths) args.push_back("@path");
  specs += "    " + Quote(path) + ") subs=" + Quote(Join(subs, " ")) +
           " opts=" + Quote(Join(spec.opts, " ")) +
           " takes_value=" + Quote(Join(spec.takes_value, " ")) +
           " args=" + Quote(Join(args, " ")) + " ;;\n";
  for (const auto& [option, completion] : spec.values) {
    values += "    " + Quote(path + "|" + option) + ") values=" + Quote(completion) + " ;;\n";
  }
  for (const CLI::App* sub : Subcommands(app)) {
    RenderSpecs(*sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), spec, specs,
                values);
  }
}

}  // namespace

Result<std::string> RenderManPage(const CLI::App& app, std::string_view tmpl,
                                  std::string_view version, std::string_view date) {
  std::string page(tmpl);
  for (std::string_view line : {"\n@COMMANDS@\n", "\n@COMMON_OPTIONS@\n"}) {
    if (page.find(line) == std::string::npos) {
      return Status::InvalidArgument("the man page template has no line " +
                                     std::string(line.substr(1, line.size() - 2)));
    }
  }
  std::map<std::string, int> counts;
  CountOptions(app, counts);
  // Per option name, its most used description, if three subcommands or more share it: the
  // subcommands that describe it otherwise keep it in their own list.
  std::map<std::string, std::pair<int, std::string>> best;
  for (const auto& [key, count] : counts) {
    auto& entry = best[key.substr(0, key.find('\n'))];
    if (count > entry.first) entry = {count, key};
  }
  std::set<std::string> common;
  for (const auto& [names, entry] : best) {
    if (entry.first >= 3) common.insert(entry.second);
  }
  ManSections sections;
  RenderCommands(app, app.get_name(), common, sections);
  // The placeholders first: the rendered text may contain anything.
  page = ReplaceAll(page, "@VERSION@", Roff(version));
  page = ReplaceAll(page, "@DATE@", Roff(date));
  page = ReplaceAll(page, "\n@COMMANDS@\n", "\n" + sections.commands);
  page = ReplaceAll(page, "\n@COMMON_OPTIONS@\n", "\n" + sections.common);
  return page;
}

std::string RenderBashCompletion(const CLI::App& app) {
  const std::string name = app.get_name();
  std::string fn = "_" + name;
  for (char& c : fn) {
    if (c == '-') c = '_';
  }
  std::string specs, values;
  RenderSpecs(app, "", Spec{}, specs, values);
  std::string script =
      "# bash completion for " + name +
      ", made by shardfs-docgen from the command definitions the binary parses with.\n"
      "\n"
      "# Sets subs, opts, takes_value and args for the subcommand path $1 (\"\" or \"devices "
      "revoke\").\n" +
      fn + "_spec() {\n  subs='' opts='' takes_value='' args=''\n  case $1 in\n" + specs +
      "  esac\n}\n"
      "\n"
      "# Sets values for the value of option $2 of subcommand path $1 (@path: local paths).\n" +
      fn + "_value() {\n  values=''\n  case \"$1|$2\" in\n" + values +
      "  esac\n}\n"
      "\n" +
      fn +
      "_offer() {\n"
      "  local w list=''\n"
      "  for w in $1; do\n"
      "    if [[ $w == @path ]]; then\n"
      "      _filedir\n"
      "    else\n"
      "      list+=\" $w\"\n"
      "    fi\n"
      "  done\n"
      "  COMPREPLY+=($(compgen -W \"$list\" -- \"$cur\"))\n"
      "}\n"
      "\n" +
      fn +
      "() {\n"
      "  local cur prev words cword split\n"
      "  _init_completion -s || return\n"
      "  local path='' i w subs opts takes_value args values\n"
      "  for ((i = 1; i < cword; i++)); do\n"
      "    w=${words[i]}\n"
      "    " +
      fn +
      "_spec \"$path\"\n"
      "    if [[ $w == -* ]]; then\n"
      "      [[ $w != *=* && \" $takes_value \" == *\" $w \"* ]] && ((i++))\n"
      "    elif [[ \" $subs \" == *\" $w \"* ]]; then\n"
      "      path=${path:+$path }$w\n"
      "    fi\n"
      "  done\n"
      "  " +
      fn +
      "_spec \"$path\"\n"
      "  COMPREPLY=()\n"
      "  if [[ \" $takes_value \" == *\" $prev \"* ]]; then\n"
      "    " +
      fn +
      "_value \"$path\" \"$prev\"\n"
      "    " +
      fn +
      "_offer \"$values\"\n"
      "    return\n"
      "  fi\n"
      "  $split && return\n"
      "  if [[ $cur == -* ]]; then\n"
      "    " +
      fn +
      "_offer \"$opts\"\n"
      "  else\n"
      "    " +
      fn +
      "_offer \"$subs $args\"\n"
      "  fi\n"
      "} &&\n"
      "  complete -F " +
      fn + " " + name + "\n";
  return script;
}

}  // namespace shardfs::cli
