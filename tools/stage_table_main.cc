// conveyor-stage-table: prints the stage registry as docs/architecture.md's
// table; with --write FILE, replaces the table in FILE. Run it after
// changing common/stage_registry.cc (the registry test fails until then).
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "common/stage_table.h"

int main(int argc, char** argv) {
  if (argc == 1) {
    std::cout << conveyor::StageTableMarkdown();
    return 0;
  }
  if (argc != 3 || std::string(argv[1]) != "--write") {
    std::cerr << "usage: conveyor-stage-table [--write FILE]\n";
    return 2;
  }
  std::ifstream in(argv[2]);
  if (!in) {
    std::cerr << "conveyor-stage-table: cannot read " << argv[2] << "\n";
    return 1;
  }
  std::stringstream text;
  text << in.rdbuf();
  in.close();
  auto updated = conveyor::WithStageTable(text.str());
  if (!updated.ok()) {
    std::cerr << "conveyor-stage-table: " << argv[2] << ": " << updated.status().message() << "\n";
    return 1;
  }
  std::ofstream out(argv[2], std::ios::trunc);
  out << *updated;
  return out ? 0 : 1;
}
