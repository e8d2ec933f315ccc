# Finds the three OpenCV modules Conveyor uses (core, imgproc, imgcodecs) and
# defines imported targets opencv_core, opencv_imgproc, opencv_imgcodecs.
#
# Debian's full libopencv-dev (which ships OpenCVConfig.cmake) pulls in ~190
# packages (VTK, GUI toolkits); the per-module -dev packages we install ship the
# headers and libraries but no CMake config, so we locate them here. If a full
# OpenCV config is present it is used instead.
find_package(OpenCV 4 QUIET CONFIG COMPONENTS core imgproc imgcodecs)
if(OpenCV_FOUND)
  set(OpenCVModules_FOUND TRUE)
  return()
endif()

find_path(OpenCVModules_INCLUDE_DIR opencv2/core.hpp PATH_SUFFIXES opencv4)
set(_conveyor_opencv_libs)
foreach(_module core imgproc imgcodecs)
  find_library(OpenCVModules_${_module}_LIBRARY NAMES opencv_${_module})
  list(APPEND _conveyor_opencv_libs OpenCVModules_${_module}_LIBRARY)
endforeach()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(OpenCVModules
  REQUIRED_VARS OpenCVModules_INCLUDE_DIR ${_conveyor_opencv_libs})

if(OpenCVModules_FOUND)
  foreach(_module core imgproc imgcodecs)
    if(NOT TARGET opencv_${_module})
      add_library(opencv_${_module} UNKNOWN IMPORTED)
      set_target_properties(opencv_${_module} PROPERTIES
        IMPORTED_LOCATION "${OpenCVModules_${_module}_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${OpenCVModules_INCLUDE_DIR}")
    endif()
  endforeach()
  set_property(TARGET opencv_imgproc PROPERTY INTERFACE_LINK_LIBRARIES opencv_core)
  set_property(TARGET opencv_imgcodecs PROPERTY INTERFACE_LINK_LIBRARIES opencv_core)
endif()
