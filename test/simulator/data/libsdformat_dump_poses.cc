// Reference dump for test/simulator/test_sdf.py: prints every collision of an SDF world with its
// pose resolved in the world frame by libsdformat (the parser Gazebo uses). Built and run with
//   g++ libsdformat_dump_poses.cc $(pkg-config --cflags --libs sdformat12) -o dump
//   ./dump worlds/warehouse.sdf > test/simulator/data/warehouse.libsdformat.poses
// (Debian 12: apt-get install libsdformat-dev). Not built by the project.
#include <sdf/sdf.hh>
#include <iostream>
#include <iomanip>
// Prints every collision's pose resolved in the world frame by libsdformat:
// scoped_name x y z roll pitch yaw
void walk(const sdf::Model* m, const std::string& prefix, ignition::math::Matrix4d parent) {
  ignition::math::Pose3d mp; auto me = m->SemanticPose().Resolve(mp);
  if (!me.empty()) std::cerr << me[0] << "\n";
  ignition::math::Matrix4d M = parent * ignition::math::Matrix4d(mp);
  std::string name = prefix.empty() ? m->Name() : prefix + "::" + m->Name();
  for (uint64_t i = 0; i < m->LinkCount(); ++i) {
    const sdf::Link* l = m->LinkByIndex(i);
    for (uint64_t j = 0; j < l->CollisionCount(); ++j) {
      const sdf::Collision* c = l->CollisionByIndex(j);
      ignition::math::Pose3d p;
      auto errs = c->SemanticPose().Resolve(p, "__model__");
      ignition::math::Matrix4d C = M * ignition::math::Matrix4d(p); p = C.Pose();
      if (!errs.empty()) { std::cerr << errs[0] << "\n"; continue; }
      std::cout << std::setprecision(9) << name << "::" << l->Name() << "::" << c->Name() << " "
                << p.Pos().X() << " " << p.Pos().Y() << " " << p.Pos().Z() << " "
                << p.Rot().Roll() << " " << p.Rot().Pitch() << " " << p.Rot().Yaw() << "\n";
    }
  }
  for (uint64_t k = 0; k < m->ModelCount(); ++k) walk(m->ModelByIndex(k), name, M);
}
int main(int argc, char** argv) {
  sdf::Root root; auto errs = root.Load(argv[1]);
  if (!errs.empty()) { std::cerr << errs[0] << "\n"; return 1; }
  const sdf::World* w = root.WorldByIndex(0);
  for (uint64_t i = 0; i < w->ModelCount(); ++i) walk(w->ModelByIndex(i), "", ignition::math::Matrix4d::Identity);
}
