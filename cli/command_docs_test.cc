#include "cli/command_docs.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/commands.h"

namespace shardfs::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kTemplate =
    ".TH TOOL 1 \"@DATE@\" \"tool @VERSION@\"\n.SH COMMANDS\n@COMMANDS@\n.SH COMMON OPTIONS\n"
    "@COMMON_OPTIONS@\n.SH END\n";

// Escapes as RenderManPage writes names: every '-' as "\-".
std::string RoffName(const std::string& name) {
  std::string out;
  for (char c : name) out += c == '-' ? std::string("\\-") : std::string(1, c);
  return out;
}

class CommandDocsTest : public ::testing::Test {
 protected:
  CommandDocsTest() : app_("A tool.", "tool") {
    for (const char* name : {"alpha", "beta", "gamma"}) {
      CLI::App* sub = app_.add_subcommand(name, std::string("The ") + name + " command.");
      sub->add_option("--drive", drive_, "The drive's name")->capture_default_str();
      subs_.push_back(sub);
    }
    subs_[0]
        ->add_option("action", action_, "start or stop")
        ->required()
        ->check(CLI::IsMember({"start", "stop"}));
    subs_[0]->add_option("--config", text_, "Read options from a file");
    subs_[0]->add_flag("-v,--verbose", flag_, ".leading dot and a back\\slash");
    subs_[0]->add_option("--join", list_, "A member to join through");
    subs_[1]->add_option("--drive-dir", text_, "Where drives live");
    CLI::App* nested = subs_[1]->add_subcommand("revoke", "End a device's access.");
    nested->add_option("device", text_, "The device")->required();
    nested->fallthrough();  // takes beta's options after its argument
  }

  std::string Man() {
    auto page = RenderManPage(app_, kTemplate, "1.2.3", "2026-11-22");
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    return page.ok() ? page.value() : "";
  }

  CLI::App app_;
  std::vector<CLI::App*> subs_;
  std::string drive_ = "default", action_, text_;
  std::vector<std::string> list_;
  bool flag_ = false;
};

TEST_F(CommandDocsTest, ManPageHasASectionPerCommandWithItsArgumentsAndOptions) {
  std::string page = Man();
  EXPECT_THAT(page, HasSubstr(".TH TOOL 1 \"2026\\-11\\-22\" \"tool 1.2.3\"\n"));
  EXPECT_THAT(page, HasSubstr(".SS \"tool alpha [options] action\"\nThe alpha command.\n"));
  EXPECT_THAT(page, HasSubstr(".SS \"tool beta [options] [command]\"\n"));
  EXPECT_THAT(page, HasSubstr(".SS \"tool beta revoke [options] device\"\n"));
  EXPECT_THAT(page, HasSubstr(".SS \"tool gamma [options]\"\n"));
  EXPECT_THAT(page, HasSubstr("And the options of \\fBtool beta\\fR, given after the argument.\n"));
  EXPECT_THAT(page, HasSubstr(".TP\n\\fIaction\\fR\nstart or stop. One of: start, stop.\n"));
  EXPECT_THAT(page,
              HasSubstr(".TP\n\\fB\\-\\-config\\fR \\fITEXT\\fR\nRead options from a file.\n"));
  EXPECT_THAT(page, HasSubstr("\\fB\\-v\\fR, \\fB\\-\\-verbose\\fR\n"));
  EXPECT_THAT(page, HasSubstr("May be given more than once."));
  // A description cannot start a roff request, and its backslash is printed, not interpreted.
  EXPECT_THAT(page, HasSubstr("\n\\&.leading dot and a back\\eslash.\n"));
}

TEST_F(CommandDocsTest, OptionsOfThreeCommandsAreListedOnceAsCommon) {
  std::string page = Man();
  std::string common = page.substr(page.find(".SH COMMON OPTIONS"));
  EXPECT_THAT(
      common,
      HasSubstr(".TP\n\\fB\\-\\-drive\\fR \\fITEXT\\fR\nThe drive's name. Default: default.\n"));
  std::string commands = page.substr(0, page.find(".SH COMMON OPTIONS"));
  EXPECT_THAT(commands, Not(HasSubstr("The drive's name")));
  EXPECT_THAT(commands, HasSubstr("And the common option \\fB\\-\\-drive\\fR."));
  // Shared by one command only: stays with it.
  EXPECT_THAT(commands, HasSubstr("Where drives live."));
}

TEST_F(CommandDocsTest, TemplateWithoutPlaceholdersIsRefused) {
  auto page = RenderManPage(app_, ".TH TOOL 1\n@COMMANDS@\n", "1", "today");
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(page.status().ToString(), HasSubstr("@COMMON_OPTIONS@"));
}

TEST_F(CommandDocsTest, CompletionKnowsCommandsOptionsChoicesAndPaths) {
  std::string script = RenderBashCompletion(app_);
  EXPECT_THAT(
      script,
      HasSubstr("    '') subs='alpha beta gamma' opts='--help -h' takes_value='' args='' ;;\n"));
  EXPECT_THAT(
      script,
      HasSubstr("    'alpha') subs='' opts='--help -h --drive --config -v --verbose --join' "
                "takes_value='--drive --config --join' args='start stop' ;;\n"));
  EXPECT_THAT(script, HasSubstr("    'beta revoke') subs='' opts='--help -h --drive --drive-dir' "
                                "takes_value='--drive --drive-dir' args='@path' ;;\n"));
  EXPECT_THAT(script, HasSubstr("    'alpha|--config') values='@path' ;;\n"));
  EXPECT_THAT(script, HasSubstr("    'beta|--drive-dir') values='@path' ;;\n"));
  EXPECT_THAT(script, HasSubstr("    'beta revoke|--drive-dir') values='@path' ;;\n"));
  EXPECT_THAT(script, Not(HasSubstr("'alpha|--drive')")));
  EXPECT_THAT(script, HasSubstr("complete -F _tool tool\n"));
}

// The real command line: every subcommand, nested ones too, and every option has its place in
// the man page and the completion.
void ExpectDocumented(const CLI::App& app, const std::string& path, const std::string& page,
                      const std::string& script) {
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    std::string sub_path = path + " " + sub->get_name();
    EXPECT_THAT(page, HasSubstr(".SS \"" + RoffName(sub_path) + " [options]")) << sub_path;
    EXPECT_THAT(script, HasSubstr("'" + sub_path.substr(sub_path.find(' ') + 1) + "') subs="))
        << sub_path;
    for (const CLI::Option* o : sub->get_options()) {
      // --help, and the hidden options some tests use, are not for users.
      if (o == sub->get_help_ptr() || o->get_group().empty()) continue;
      for (const auto& l : o->get_lnames()) {
        EXPECT_THAT(page, HasSubstr("\\fB" + RoffName("--" + l) + "\\fR"))
            << sub_path << " --" << l;
      }
    }
    ExpectDocumented(*sub, sub_path, page, script);
  }
}

TEST(ShardfsDocsTest, EveryCommandAndOptionIsDocumented) {
  CLI::App app{"shardfs"};
  (void)AddCommands(app);
  auto page = RenderManPage(app, kTemplate, "0", "today");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  std::string script = RenderBashCompletion(app);
  ExpectDocumented(app, "shardfs", page.value(), script);
  EXPECT_THAT(page.value(), HasSubstr(".SS \"shardfs devices revoke [options]"));
  EXPECT_THAT(script, HasSubstr("'local-network') subs='' opts="));
  EXPECT_THAT(script, HasSubstr("args='start stop'"));
  // --json is described in more than one way: the common section has the most used one only.
  std::string common = page.value().substr(page.value().find(".SH COMMON OPTIONS"));
  size_t first = common.find("\\fB\\-\\-json\\fR");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(common.find("\\fB\\-\\-json\\fR", first + 1), std::string::npos);
}

}  // namespace
}  // namespace shardfs::cli
