#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "Convert.h"
#include "Energy.h"

namespace py = pybind11;

namespace vaepipe::detail {

void exportEnergy(py::module_& m) {
    m.def(
        "total_energies",
        [](const py::array_t<double, py::array::c_style | py::array::forcecast>& positions, double boxLength,
           double gamma, const std::string& boundary, double cutoff, bool tailCorrection) {
            if (positions.ndim() != 3) throw std::invalid_argument("positions must have shape (S, N, dim)");
            const auto count = positions.shape(0);
            const auto n = static_cast<int>(positions.shape(1));
            const auto dim = static_cast<int>(positions.shape(2));
            // Temperature plays no part in the energy; any valid value does.
            const SystemParams params =
                makeParams(n, boxLength, 1.0, gamma, dim, boundary, cutoff, tailCorrection);
            py::array_t<double> out(count);
            const double* p = positions.data();
            double* o = out.mutable_data();
            {
                py::gil_scoped_release release;
                totalEnergies(params, p, count, o);
            }
            return out;
        },
        py::arg("positions"), py::arg("box_length"), py::arg("gamma"), py::arg("boundary"), py::arg("cutoff"),
        py::arg("tail_correction"),
        "Total energy / eps of each configuration in positions (S, N, dim). Use vaepipe.energy.potential_energy.");
    m.def(
        "total_forces",
        [](const py::array_t<double, py::array::c_style | py::array::forcecast>& positions, double boxLength,
           double gamma, const std::string& boundary, double cutoff) {
            if (positions.ndim() != 3) throw std::invalid_argument("positions must have shape (S, N, dim)");
            const auto count = positions.shape(0);
            const auto n = static_cast<int>(positions.shape(1));
            const auto dim = static_cast<int>(positions.shape(2));
            const SystemParams params = makeParams(n, boxLength, 1.0, gamma, dim, boundary, cutoff, false);
            py::array_t<double> out({count, positions.shape(1), positions.shape(2)});
            const double* p = positions.data();
            double* o = out.mutable_data();
            {
                py::gil_scoped_release release;
                totalForces(params, p, count, o);
            }
            return out;
        },
        py::arg("positions"), py::arg("box_length"), py::arg("gamma"), py::arg("boundary"), py::arg("cutoff"),
        "Forces -dU/dr / (eps/sigma) of each configuration in positions (S, N, dim). Use vaepipe.energy.forces.");
}

}  // namespace vaepipe::detail
