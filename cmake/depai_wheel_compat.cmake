# ROS 2 message packages installed from PyPI wheels (ros-jazzy-*) export CMake targets whose
# INTERFACE_INCLUDE_DIRECTORIES name the wheel builder's interpreter, e.g.
#   /opt/python/cp311-cp311/include/python3.11
#   /opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include
# Those paths do not exist on a user's machine, so CMake refuses to generate any package that
# links a generated Python typesupport against them. This rewrites such paths on imported
# targets to the current interpreter's headers and NumPy headers. On a stock apt install of
# ROS 2 no target matches and nothing changes.
function(depai_fix_wheel_include_dirs)
  get_directory_property(_targets IMPORTED_TARGETS)
  set(_found FALSE)
  foreach(_t IN LISTS _targets)
    get_target_property(_inc ${_t} INTERFACE_INCLUDE_DIRECTORIES)
    if(_inc AND "${_inc}" MATCHES "/opt/python/cp[0-9]+-cp[0-9]+/")
      set(_found TRUE)
      break()
    endif()
  endforeach()
  if(NOT _found)
    return()
  endif()

  find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module NumPy)
  message(STATUS "depai: rewriting wheel-builder include paths to ${Python3_INCLUDE_DIRS} and ${Python3_NumPy_INCLUDE_DIRS}")
  foreach(_t IN LISTS _targets)
    get_target_property(_inc ${_t} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _inc OR NOT "${_inc}" MATCHES "/opt/python/cp[0-9]+-cp[0-9]+/")
      continue()
    endif()
    set(_fixed "")
    foreach(_dir IN LISTS _inc)
      if(_dir MATCHES "^/opt/python/cp[0-9]+-cp[0-9]+/.*/numpy/")
        list(APPEND _fixed ${Python3_NumPy_INCLUDE_DIRS})
      elseif(_dir MATCHES "^/opt/python/cp[0-9]+-cp[0-9]+/include/")
        list(APPEND _fixed ${Python3_INCLUDE_DIRS})
      else()
        list(APPEND _fixed "${_dir}")
      endif()
    endforeach()
    list(REMOVE_DUPLICATES _fixed)
    set_target_properties(${_t} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_fixed}")
  endforeach()
endfunction()
