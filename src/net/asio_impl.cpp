// Boost.Asio's own implementation, compiled once for the whole program
// (BOOST_ASIO_SEPARATE_COMPILATION) so other translation units only parse declarations.
#include <boost/asio/impl/src.hpp>
