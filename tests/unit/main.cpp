#define BOOST_TEST_MODULE vfio_hook_unit_tests
#include <boost/test/unit_test.hpp>
